"""TOML configuration -> typed, validated settings.

Config flows in once (`load_config`) and is passed down as these objects; no
module reaches for settings on its own. Every error names the file and the key.
"""
from __future__ import annotations

import dataclasses
import difflib
import os
import re
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .outcomes import ChannelKind
from .vocabulary import Category


class ConfigError(Exception):
    """The configuration is unusable; the message names file, key and what is expected."""


@dataclass(frozen=True)
class DatabaseConfig:
    url: str = "sqlite:////var/lib/gatewayd/gatewayd.db"


@dataclass(frozen=True)
class ModemConfig:
    name: str
    port: str
    baudrate: int = 115200
    pin: str = ""
    sms_per_minute: float = 20.0
    smsc: str = ""                     # SMS centre number; "" keeps the SIM's own
    delivery_reports: bool = True
    command_timeout: float = 10.0      # seconds for one AT command
    send_timeout: float = 60.0         # seconds for one +CMGS
    # Operator fair-use quotas (0 = none); see the quota issue.
    quota_per_day: int = 0
    quota_per_month: int = 0
    quota_recipients_per_month: int = 0
    # Prepaid SIMs: ask the operator's balance code (USSD, e.g. "*121#") now and then;
    # below balance_min the SIM counts as out of credit and the keeper is told.
    balance_ussd: str = ""
    balance_min: float = 1.0
    balance_every_minutes: float = 60.0


@dataclass(frozen=True)
class HilinkConfig:
    """A Huawei LTE dongle in HiLink mode (E3372h and kin): a network card with a web API, no AT port."""

    name: str
    url: str = "http://192.168.8.1/"
    username: str = "admin"
    password: str = ""                 # the dongle's web login; never logged
    sms_per_minute: float = 20.0
    delivery_reports: bool = True      # ask for status reports (the dongle stores them in its inbox)
    timeout: float = 10.0              # seconds for one API call
    send_timeout: float = 60.0         # seconds to wait for the dongle to report a send done
    poll_interval: float = 5.0         # seconds between looks at the inbox, signal and registration
    quota_per_day: int = 0
    quota_per_month: int = 0
    quota_recipients_per_month: int = 0


@dataclass(frozen=True)
class AsteriskConfig:
    host: str = "127.0.0.1"
    port: int = 5038
    username: str = "gatewayd"
    secret: str = ""
    channel: str = "PJSIP/{number}@gsm-trunk"
    context: str = "bin-alert"
    extension: str = "s"
    max_calls: int = 4
    calls_per_minute: float = 60.0
    ring_timeout: float = 30.0         # seconds to let a call ring
    audio_url: str = ""                # e.g. http://10.0.0.2:8090/audio/{file}
    audio_dir: str = ""                # alternative: a directory Asterisk reads
    audio_listen: str = "127.0.0.1:8090"   # where gatewayd serves rendered audio
    caller_id: str = ""
    confirm_wait: float = 5.0          # seconds to wait for the member's "1" after the prompt
    max_repeats: int = 2               # how often "press 0" replays the message in one call
    amd: bool = True                   # answering-machine detection (app_amd; tuning in amd.conf)
    quick_recall_seconds: float = 120.0   # unanswered first call: one re-call this soon; 0 = normal backoff
    callback_number: str = ""          # the box's number members call back (said on answering machines)
    callback_hours: float = 24.0       # a caller on the callback line hears their networks' alerts of these hours
    callback_language: str = "nl"      # language of the neutral sentence a stranger hears on the callback line


@dataclass(frozen=True)
class EmulatedConfig:
    """An in-process pretend device, for the demo and for tests."""

    name: str
    kind: str = ChannelKind.SMS.value  # sms | voice
    latency: float = 0.5               # seconds per send
    failure_rate: float = 0.0          # 0..1, transient failures
    rate_per_minute: float = 600.0
    capacity: int = 1


@dataclass(frozen=True)
class DispatchConfig:
    quiet_hours: str = "22:00-07:00"   # prevention waits; "" disables; urgent ignores it
    timezone: str = "Europe/Brussels"
    node: str = ""                     # a label for people (status, keeper); "" = hostname. Not the node id
    node_id_file: str = ""             # where this gateway keeps its node id; "" = beside the SQLite
                                       # database, or /var/lib/gatewayd/node-id
    heartbeat_seconds: float = 5.0     # how often the node renews its lease on its sends in flight
    poll_interval: float = 0.05        # seconds between queue polls when idle
    idle_poll_max: float = 2.0         # PostgreSQL: idle polling backs off up to this (NOTIFY wakes at once)
    max_attempts_urgent: int = 5
    max_attempts_feedback: int = 3
    max_attempts_prevention: int = 3
    # The devices' own budget: port gone, timeout, Asterisk down. Never spends the above.
    max_device_failures: int = 10
    backoff_base: float = 30.0         # seconds; doubles each attempt
    backoff_max: float = 900.0
    expiry_urgent_minutes: int = 120   # an urgent alert not out by then is reported, not sent late
    expiry_feedback_minutes: int = 1440
    expiry_prevention_minutes: int = 4320
    expiry_system_minutes: int = 1440  # STOP confirmations, keeper texts: not sent after this
    inflight_policy: str = "resend"    # resend | fail: messages found `sending` after a crash
    drill: bool = False                # nothing leaves the box
    urgent_may_exceed_quota: bool = False   # urgent alerts may go past a SIM's fair-use quota
    approval_categories: tuple[str, ...] = ()   # categories needing a second user's approval
    control_socket: str = ""           # UNIX socket on which the daemon takes `alert send`; "" = none
    sender_first: bool = False         # SMS and calls start with who and when ("Politie zone Noord, 14 uur 5")
    # Escalation: this many minutes after an alert went out, members whose SMS is not delivered get a call,
    # members whose call is not acknowledged get an SMS (a mobile number only); 0 = no escalation.
    escalate_after_minutes_urgent: float = 0.0
    escalate_after_minutes_feedback: float = 0.0
    escalate_after_minutes_prevention: float = 0.0
    # Voice: an answering machine took the call -> call again once, this many minutes later (0 = never).
    voicemail_recall_minutes_urgent: float = 30.0
    voicemail_recall_minutes_feedback: float = 0.0
    voicemail_recall_minutes_prevention: float = 0.0


@dataclass(frozen=True)
class SelfTestConfig:
    """A scheduled proof that the whole path works (see gatewayd/selftest.py)."""

    every_hours: float = 0.0           # 0 disables
    to_number: str = ""                # a number to text; "" = loopback between the box's own SIMs
    call_number: str = ""              # optional test call through Asterisk
    wait_minutes: float = 10.0         # how long the proof may take before it counts as failed


@dataclass(frozen=True)
class SmsConfig:
    smart_encoding: bool = True        # map ë, curly quotes, dashes to GSM-7 when it saves segments
    max_segments: int = 6


@dataclass(frozen=True)
class TtsConfig:
    cache_dir: str = "/var/lib/gatewayd/audio"
    rate: int = 150                    # words per minute
    header_nl: str = "Dringend bericht van het buurtinformatienetwerk."
    header_fr: str = "Message urgent du réseau d'information de quartier."
    header_de: str = "Dringende Nachricht vom Nachbarschaftsinformationsnetzwerk."
    header_en: str = "Urgent message from the neighbourhood information network."
    # Piper neural voices per language: the path of a voice's .onnx file (its .onnx.json beside it);
    # "" = espeak-ng. E.g. /var/lib/gatewayd/voices/nl_BE-nathalie-medium.onnx (see README).
    piper_voice_nl: str = ""
    piper_voice_fr: str = ""
    piper_voice_de: str = ""
    piper_voice_en: str = ""


@dataclass(frozen=True)
class WebConfig:
    listen: str = "127.0.0.1:8080"
    secret_key: str = ""               # `gatewayd secret-key` writes one; `web` refuses a weak one
    secure_cookies: bool = False       # true behind HTTPS (cookies are Secure on HTTPS requests anyway)
    default_language: str = "nl"
    session_idle_minutes: int = 120    # a session unused this long ends
    session_hours: float = 12.0        # and every session ends this long after its login, used or not
    trusted_proxy: str = ""            # address of the reverse proxy (e.g. nginx on 127.0.0.1) whose
                                       # X-Forwarded-For/-Proto are believed; "" = none
    metrics_token: str = ""            # bearer token that opens /metrics and /healthz's details
    metrics_allow: tuple[str, ...] = ("127.0.0.1", "::1")   # addresses/networks allowed without the token


@dataclass(frozen=True)
class LoggingConfig:
    level: str = "INFO"


@dataclass(frozen=True)
class RetentionConfig:
    """How long delivery records keep message texts and numbers (GDPR); counts are kept."""

    days: int = 90                     # 0 keeps them forever


@dataclass(frozen=True)
class KeeperConfig:
    """Who is told when the box needs a person, and when (see gatewayd/keeper.py)."""

    sms_to: str = ""                   # technical contact's number; "" = no SMS
    email_to: str = ""                 # technical contact's address; "" = no e-mail
    email_from: str = "gatewayd@localhost"
    smtp_host: str = ""                # "" = no e-mail
    smtp_port: int = 25
    smtp_starttls: bool = False
    smtp_username: str = ""
    smtp_password: str = ""            # never logged
    device_down_minutes: float = 5.0   # a device down this long is reported
    queue_stuck_minutes: float = 15.0  # due messages waiting this long with no send attempt
    repeat_hours: float = 24.0         # remind while a problem lasts; 0 = tell once


@dataclass(frozen=True)
class Config:
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    modems: tuple[ModemConfig, ...] = ()
    hilink: tuple[HilinkConfig, ...] = ()
    asterisk: AsteriskConfig | None = None
    emulated: tuple[EmulatedConfig, ...] = ()
    dispatch: DispatchConfig = field(default_factory=DispatchConfig)
    sms: SmsConfig = field(default_factory=SmsConfig)
    tts: TtsConfig = field(default_factory=TtsConfig)
    web: WebConfig = field(default_factory=WebConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    keeper: KeeperConfig = field(default_factory=KeeperConfig)
    selftest: SelfTestConfig = field(default_factory=SelfTestConfig)
    source: str = "<defaults>"

    @property
    def sims(self) -> tuple[ModemConfig | HilinkConfig, ...]:
        """Every SIM the box sends SMS through (AT modems and HiLink dongles): rates and quotas."""
        return self.modems + self.hilink


_QUIET_RE = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")
_CHOICES = {
    ("emulated", "kind"): tuple(k.value for k in ChannelKind),
    ("dispatch", "inflight_policy"): ("resend", "fail"),
    ("logging", "level"): ("DEBUG", "INFO", "WARNING", "ERROR"),
    ("web", "default_language"): ("nl", "fr", "en"),
}


def _type_name(tp: typing.Any) -> str:
    if typing.get_origin(tp) is tuple:
        return f"a list of {_type_name(typing.get_args(tp)[0]).removeprefix('a ').removeprefix('an ')}s"
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(tp, str(tp))


def _coerce(value: typing.Any, tp: typing.Any, where: str) -> typing.Any:
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp in (str, int, bool) and type(value) is tp:
        return value
    if typing.get_origin(tp) is tuple and isinstance(value, list):
        item = typing.get_args(tp)[0]
        return tuple(_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value))
    raise ConfigError(f"{where}: expected {_type_name(tp)}, got {type(value).__name__} {value!r}")


def _build(cls: type, raw: typing.Any, where: str) -> typing.Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a table, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        close = difflib.get_close_matches(unknown[0], fields, n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(sorted(fields))}"
        raise ConfigError(f"{where}.{unknown[0]}: unknown key; {hint}")
    values = {}
    for name, f in fields.items():
        key = f"{where}.{name}"
        if name not in raw:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{key}: missing, a value is required")
            continue
        values[name] = _coerce(raw[name], hints[name], key)
    return cls(**values)


def _validate(cfg: Config) -> None:
    src = cfg.source
    names: set[str] = set()
    for i, m in enumerate(cfg.modems):
        where = f"{src}: [[modems]] #{i + 1}"
        if not m.port:
            raise ConfigError(f"{where}.port: missing, give the serial device (e.g. /dev/ttyUSB0)")
        if m.pin and not re.fullmatch(r"\d{4,8}", m.pin):
            raise ConfigError(f"{where}.pin: expected 4 to 8 digits")
        if m.balance_ussd and not re.fullmatch(r"[0-9*#]{2,20}", m.balance_ussd):
            raise ConfigError(f"{where}.balance_ussd: expected a USSD code of digits, * and # (e.g. *121#)")
        if m.sms_per_minute <= 0:
            raise ConfigError(f"{where}.sms_per_minute: expected a number above 0")
        if m.name in names:
            raise ConfigError(f"{where}.name: '{m.name}' is used twice; device names must be unique")
        names.add(m.name)
    for i, h in enumerate(cfg.hilink):
        where = f"{src}: [[hilink]] #{i + 1}"
        if not re.match(r"^https?://[^/\s]+", h.url):
            raise ConfigError(f"{where}.url: expected the dongle's address, e.g. http://192.168.8.1/")
        if "@" in h.url.split("/")[2]:
            # The url is shown on the device page, in status and in errors: a login in it would be too.
            raise ConfigError(f"{where}.url: must not hold a login (user:password@); put it in username and "
                              f"password of this [[hilink]] instead")
        if h.name in names:
            raise ConfigError(f"{where}.name: '{h.name}' is used twice; device names must be unique")
        names.add(h.name)
    for i, e in enumerate(cfg.emulated):
        where = f"{src}: [[emulated]] #{i + 1}"
        if e.kind not in _CHOICES[("emulated", "kind")]:
            raise ConfigError(f"{where}.kind: expected 'sms' or 'voice', got {e.kind!r}")
        if not 0.0 <= e.failure_rate <= 1.0:
            raise ConfigError(f"{where}.failure_rate: expected a number from 0 to 1")
        if e.name in names:
            raise ConfigError(f"{where}.name: '{e.name}' is used twice; device names must be unique")
        names.add(e.name)
    d = cfg.dispatch
    try:
        quiet_window(d.quiet_hours)
    except ConfigError as exc:
        raise ConfigError(f"{src}: [dispatch].{exc}") from None
    _check_ranges(cfg)
    for i, cat in enumerate(d.approval_categories):
        if cat not in {c.value for c in Category}:
            raise ConfigError(f"{src}: [dispatch].approval_categories[{i}]: {cat!r} is not urgent, feedback "
                              "or prevention")
    if cfg.selftest.every_hours < 0 or cfg.selftest.wait_minutes <= 0:
        raise ConfigError(f"{src}: [selftest]: every_hours must be 0 or more, wait_minutes above 0")
    if d.inflight_policy not in ("resend", "fail"):
        raise ConfigError(f"{src}: [dispatch].inflight_policy: expected 'resend' or 'fail'")
    try:
        import zoneinfo
        zoneinfo.ZoneInfo(d.timezone)
    except Exception:
        raise ConfigError(f"{src}: [dispatch].timezone: unknown time zone {d.timezone!r}") from None
    if cfg.logging.level not in _CHOICES[("logging", "level")]:
        raise ConfigError(f"{src}: [logging].level: expected one of DEBUG, INFO, WARNING, ERROR")
    if cfg.web.default_language not in ("nl", "fr", "en"):
        raise ConfigError(f"{src}: [web].default_language: expected nl, fr or en")
    _validate_web(cfg)
    a = cfg.asterisk
    if a is not None:
        if "{number}" not in a.channel:
            raise ConfigError(f"{src}: [asterisk].channel: must contain {{number}}, got {a.channel!r}")
        if a.max_calls < 1:
            raise ConfigError(f"{src}: [asterisk].max_calls: expected 1 or more")
        if a.audio_url and "{file}" not in a.audio_url:
            raise ConfigError(f"{src}: [asterisk].audio_url: must contain {{file}}")
        if not a.secret:
            raise ConfigError(f"{src}: [asterisk].secret: missing, the AMI user's secret is required")
        if a.callback_language not in ("nl", "fr", "de", "en"):
            raise ConfigError(f"{src}: [asterisk].callback_language: expected nl, fr, de or en")
        if a.callback_number:
            _check_phone(a.callback_number, f"{src}: [asterisk]", "callback_number")
    if not cfg.database.url:
        raise ConfigError(f"{src}: [database].url: missing")
    _validate_ops(cfg)


def _check_phone(value: str, where: str, key: str) -> None:
    """A phone number in the config: ConfigError naming WHERE.KEY when it is not one."""
    from .errors import InputError
    from .phone import parse_phone
    try:
        parse_phone(value, field=key)
    except InputError as exc:
        raise ConfigError(f"{where}.{exc}") from None


def _validate_web(cfg: Config) -> None:
    """[web]: session limits in range, addresses that parse."""
    import ipaddress
    src, w = cfg.source, cfg.web
    if w.session_idle_minutes < 1:
        raise ConfigError(f"{src}: [web].session_idle_minutes: expected 1 or more")
    if not 0 < w.session_hours <= 24 * 30:
        raise ConfigError(f"{src}: [web].session_hours: expected a number above 0 and at most 720")
    if w.trusted_proxy:
        try:
            ipaddress.ip_address(w.trusted_proxy)
        except ValueError:
            raise ConfigError(f"{src}: [web].trusted_proxy: {w.trusted_proxy!r} is not an IP address "
                              "(the proxy's own address, e.g. 127.0.0.1)") from None
    for v in w.metrics_allow:
        try:
            ipaddress.ip_network(v, strict=False)
        except ValueError:
            raise ConfigError(f"{src}: [web].metrics_allow: {v!r} is not an IP address or network") from None
    if w.metrics_token and len(w.metrics_token) < 16:
        raise ConfigError(f"{src}: [web].metrics_token: shorter than 16 characters; "
                          "make one with: python3 -c 'import secrets; print(secrets.token_urlsafe(32))'")


def _validate_ops(cfg: Config) -> None:
    """[retention] and [keeper]: numbers in range, a keeper number that can receive SMS."""
    src, k = cfg.source, cfg.keeper
    if cfg.retention.days < 0:
        raise ConfigError(f"{src}: [retention].days: expected 0 (keep forever) or more")
    for key in ("device_down_minutes", "queue_stuck_minutes", "repeat_hours"):
        if getattr(k, key) < 0:
            raise ConfigError(f"{src}: [keeper].{key}: expected 0 or more")
    if k.sms_to:
        _check_phone(k.sms_to, f"{src}: [keeper]", "sms_to")
    if k.email_to and not k.smtp_host:
        raise ConfigError(f"{src}: [keeper].smtp_host: missing; e-mail to {k.email_to} needs an SMTP host")


# (section, key, test, what is expected): numbers that would stop or break sending.
_Range = tuple[Callable[[float], bool], str]
_POSITIVE: _Range = (lambda v: v > 0, "a number above 0")
_AT_LEAST_1: _Range = (lambda v: v >= 1, "1 or more")
_NOT_NEGATIVE: _Range = (lambda v: v >= 0, "0 or more")
_RANGES: dict[str, dict[str, _Range]] = {
    "dispatch": {"poll_interval": _POSITIVE, "heartbeat_seconds": _POSITIVE, "idle_poll_max": _POSITIVE,
                 "max_attempts_urgent": _AT_LEAST_1,
                 "max_attempts_feedback": _AT_LEAST_1, "max_attempts_prevention": _AT_LEAST_1,
                 "max_device_failures": _AT_LEAST_1, "expiry_system_minutes": _AT_LEAST_1,
                 "backoff_base": _POSITIVE, "backoff_max": _POSITIVE, "expiry_urgent_minutes": _AT_LEAST_1,
                 "expiry_feedback_minutes": _AT_LEAST_1, "expiry_prevention_minutes": _AT_LEAST_1,
                 "voicemail_recall_minutes_urgent": _NOT_NEGATIVE, "voicemail_recall_minutes_feedback": _NOT_NEGATIVE,
                 "voicemail_recall_minutes_prevention": _NOT_NEGATIVE,
                 "escalate_after_minutes_urgent": _NOT_NEGATIVE, "escalate_after_minutes_feedback": _NOT_NEGATIVE,
                 "escalate_after_minutes_prevention": _NOT_NEGATIVE},
    "modems": {"baudrate": _POSITIVE, "command_timeout": _POSITIVE, "send_timeout": _POSITIVE,
               "quota_per_day": _NOT_NEGATIVE, "quota_per_month": _NOT_NEGATIVE,
               "quota_recipients_per_month": _NOT_NEGATIVE, "balance_min": _NOT_NEGATIVE,
               "balance_every_minutes": _POSITIVE},
    "hilink": {"sms_per_minute": _POSITIVE, "timeout": _POSITIVE, "send_timeout": _POSITIVE,
               "poll_interval": _POSITIVE, "quota_per_day": _NOT_NEGATIVE, "quota_per_month": _NOT_NEGATIVE,
               "quota_recipients_per_month": _NOT_NEGATIVE},
    "emulated": {"latency": _NOT_NEGATIVE, "rate_per_minute": _POSITIVE, "capacity": _AT_LEAST_1},
    "asterisk": {"port": (lambda v: 0 < v < 65536, "a TCP port, 1 to 65535"), "calls_per_minute": _POSITIVE,
                 "ring_timeout": _POSITIVE, "max_repeats": (lambda v: 0 <= v <= 9, "0 to 9"),
                 "quick_recall_seconds": _NOT_NEGATIVE, "callback_hours": _POSITIVE},
    "sms": {"max_segments": (lambda v: 1 <= v <= 255, "1 to 255")},
    "tts": {"rate": (lambda v: 50 <= v <= 400, "50 to 400 words a minute")},
}


def _check_ranges(cfg: Config) -> None:
    for section, keys in _RANGES.items():
        value = getattr(cfg, section)
        items = value if isinstance(value, tuple) else () if value is None else (value,)
        for i, item in enumerate(items):
            where = f"[[{section}]] #{i + 1}" if isinstance(value, tuple) else f"[{section}]"
            for key, (ok, expected) in keys.items():
                if not ok(getattr(item, key)):
                    raise ConfigError(f"{cfg.source}: {where}.{key}: expected {expected}, "
                                      f"got {getattr(item, key)!r}")
    d = cfg.dispatch
    if d.backoff_max < d.backoff_base:
        raise ConfigError(f"{cfg.source}: [dispatch].backoff_max: must be at least backoff_base ({d.backoff_base:g})")
    # A scheme check only: importing SQLAlchemy here would slow every command down.
    if not re.match(r"^[A-Za-z][A-Za-z0-9+]*://", cfg.database.url):
        raise ConfigError(f"{cfg.source}: [database].url: not a database URL, expected e.g. "
                          "'sqlite:////var/lib/gatewayd/gatewayd.db' or 'postgresql+psycopg://user@host/db'") from None


def parse_config(raw: dict[str, Any], source: str = "<string>") -> Config:
    """Build a validated Config from a parsed TOML document."""
    known = {f.name for f in dataclasses.fields(Config)} - {"source"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"{source}: unknown section '{unknown[0]}' (known: {', '.join(sorted(known))})")
    kwargs: dict[str, typing.Any] = {"source": source}
    singles = {"database": DatabaseConfig, "dispatch": DispatchConfig, "sms": SmsConfig,
               "tts": TtsConfig, "web": WebConfig, "logging": LoggingConfig, "asterisk": AsteriskConfig,
               "retention": RetentionConfig, "keeper": KeeperConfig, "selftest": SelfTestConfig}
    for name, cls in singles.items():
        if name in raw:
            kwargs[name] = _build(cls, raw[name], f"{source}: [{name}]")
    for name, cls in (("modems", ModemConfig), ("hilink", HilinkConfig), ("emulated", EmulatedConfig)):
        if name in raw:
            items = raw[name]
            if not isinstance(items, list):
                raise ConfigError(f"{source}: [[{name}]]: expected an array of tables ([[{name}]])")
            kwargs[name] = tuple(_build(cls, item, f"{source}: [[{name}]] #{i + 1}")
                                 for i, item in enumerate(items))
    cfg = Config(**kwargs)
    _validate(cfg)
    return cfg


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read the config from PATH, else $GATEWAYD_CONFIG, else built-in defaults."""
    path = path or os.environ.get("GATEWAYD_CONFIG")
    if not path:
        return parse_config({}, "<defaults>")
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read config: {exc.strerror}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    return parse_config(raw, str(p))


def quiet_window(spec: str) -> tuple[int, int] | None:
    """'22:00-07:00' -> (start_minute, end_minute) of the day, or None when disabled."""
    if not spec:
        return None
    m = _QUIET_RE.match(spec)
    if not m:
        raise ConfigError(f"quiet_hours: expected 'HH:MM-HH:MM', got {spec!r}")
    h1, m1, h2, m2 = map(int, m.groups())
    if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
        raise ConfigError(f"quiet_hours: {spec!r} is not a time of day (00:00 to 23:59)")
    return h1 * 60 + m1, h2 * 60 + m2
