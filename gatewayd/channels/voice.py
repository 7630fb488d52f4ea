"""Text-to-voice alert calls through Asterisk, driven over AMI.

One `send()` is one phone call:

1. the text is rendered to speech (gatewayd.tts) and made reachable for
   Asterisk (served over HTTP by gatewayd.audio, or copied into `audio_dir`);
2. an async `Originate` with our own ActionID and ChannelId puts the call into
   the dialplan context shipped in `asterisk/` (answer, play, "press 1");
3. the outcome is read from AMI events: `OriginateResponse` (answered, busy,
   no answer, congestion...), `Hangup` (cause code) and the dialplan's
   `UserEvent`s `GatewaydAmd` (a person or an answering machine answered),
   `GatewaydPlayed` (PLAYBACKSTATUS: a failed Playback still ends in a normal
   hang-up, so only this proves the message was heard), `GatewaydDigit` (1 =
   confirmed, 0 = repeat) and `GatewaydVoicemail` (the short message left on a
   machine). A 1 is written through the `CallDesk` before the dialplan thanks
   the member (AMI Setvar GATEWAYD_STORED=1 releases its WaitForCondition).

Calls *to* the box land in the dialplan's [bin-callback] context, which sends
`GatewaydCallback`: the desk records the call and says what the caller hears
(gatewayd.callback), the channel renders it and hands it over as channel
variables.

AMI goes through gatewayd.channels.ami, the one module that knows the
`asterisk-ami` library (pinned; it says where the library is brittle and how it
is wrapped; tests/unit/test_ami_library_contract.py checks its private parts).
A supervisor thread pings the link, reconnects after an AMI drop or an Asterisk restart and resolves the
calls in flight: a call whose fate is unknown ends as DEVICE_DOWN with
maybe_sent=True, so the dispatcher records a possible duplicate rather than
losing it or silently calling twice.
"""
from __future__ import annotations

import logging
import re
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from gatewayd.audio import AudioServer, AudioServerError
from gatewayd.channels.ami import (
    ACTION_TIMEOUT,
    AmiAuthError,
    AmiConnectError,
    AmiError,
    AmiLink,
    AmiValueError,
    ami_value,
)
from gatewayd.channels.base import (
    CallbackPlan,
    CallDesk,
    ChannelError,
    ChannelKind,
    Check,
    Delivery,
    DeviceEvent,
    DeviceHealth,
    DeviceState,
    EventSink,
    KeyPress,
    Outcome,
    OutcomeKind,
)
from gatewayd.config import AsteriskConfig, TtsConfig
from gatewayd.tts import (
    CALLBACK_BYE,
    CALLBACK_NEUTRAL,
    CALLBACK_NONE,
    PROMPTS,
    THANKS,
    SpeechRenderer,
    TtsError,
    TtsUnavailable,
)

log = logging.getLogger(__name__)

# How long to wait, beyond the ring timeout, for Asterisk to report on an Originate.
ORIGINATE_MARGIN = 30.0
# Longest call we wait for once answered (the message, its repeat, the digit).
MAX_CALL_SECONDS = 600.0
# After an OriginateResponse failure, how long to wait for the Hangup carrying the cause.
CAUSE_GRACE = 1.0
PING_INTERVAL = 5.0          # seconds between keep-alive pings on an idle link
RECONNECT_MAX = 5.0          # seconds between reconnect attempts, at most
DOWN_WAIT = 2.0              # a send() arriving while the link is down waits this long for it

_NUMBER_RE = re.compile(r"\+?[0-9]{3,20}")


# ---------------------------------------------------------------------------- outcome mapping
# Q.850 hang-up causes that mean the number itself is wrong: retrying cannot help.
PERMANENT_CAUSES = {1: "unallocated number", 2: "no route to network", 3: "no route to destination",
                    22: "number changed", 28: "invalid number format"}
BUSY_CAUSES = {17}
NO_ANSWER_CAUSES = {18, 19}
CONGESTION_CAUSES = {34, 38, 41, 42, 44, 47}
# OriginateResponse Reason values (Asterisk's AST_CONTROL_* of the outgoing leg).
REASON_HANGUP, REASON_RINGING, REASON_ANSWERED, REASON_BUSY, REASON_CONGESTION = 1, 3, 4, 5, 8


@dataclass
class CallFacts:
    """What AMI told us about one call; `classify` turns it into an Outcome."""

    originate: str | None = None       # "Success" | "Failure" from OriginateResponse
    reason: int | None = None          # OriginateResponse Reason
    cause: int | None = None           # Hangup Cause (Q.850)
    cause_txt: str = ""
    played: str | None = None          # PLAYBACKSTATUS from the GatewaydPlayed UserEvent
    digit: str | None = None           # the last key from the GatewaydDigit UserEvents
    repeats: int = 0                   # how often the member had the message again (key 0)
    amd: str | None = None             # AMDSTATUS from GatewaydAmd: HUMAN | MACHINE | NOTSURE | HANGUP
    voicemail: str | None = None       # PLAYBACKSTATUS of the message left on a machine
    thanked: bool = False              # the member heard "thank you" for a 1 (written first)
    hung_up: bool = False
    link_lost: str = ""                # why the AMI link went away mid-call ("" = it did not)


def _cause_outcome(f: CallFacts) -> Outcome | None:
    c = f.cause
    label = f"{f.cause_txt or 'cause'} (cause {c})"
    if c in PERMANENT_CAUSES:
        return Outcome.failed(f"invalid number: {PERMANENT_CAUSES[c]} (cause {c})")
    if c in BUSY_CAUSES:
        return Outcome.retry(f"busy: {label}")
    if c in NO_ANSWER_CAUSES:
        return Outcome.retry(f"no answer: {label}")
    if c in CONGESTION_CAUSES:
        return Outcome.retry(f"congestion: {label}")
    return None


def classify(f: CallFacts) -> Outcome:
    """Map the observed facts of one call to the dispatcher's Outcome."""
    if f.amd == "MACHINE":
        return _machine_outcome(f)
    if f.played == "SUCCESS":
        again = f", heard again {f.repeats}x (key 0)" if f.repeats else ""
        if f.digit == "1":
            thanked = "" if f.thanked else " (not thanked: the key could not be written in time)"
            return Outcome(OutcomeKind.ACKNOWLEDGED, f"answered, message played{again}, member pressed 1{thanked}")
        note = "" if not f.link_lost else "; AMI dropped afterwards, so no confirmation was read"
        return Outcome(OutcomeKind.DELIVERED, f"answered and message played{again}{note}")
    if f.played is not None:
        return Outcome.retry(f"answered but the message did not play (PLAYBACKSTATUS={f.played}); "
                             f"check that Asterisk can fetch the audio (audio_url / audio_dir)")
    if f.link_lost:
        return Outcome.device_down(f"{f.link_lost} while the call was in progress; "
                                   f"it may have reached the member", maybe_sent=True)
    if f.originate == "Success":
        return Outcome.retry("answered but hung up before the message finished")
    if f.reason == REASON_BUSY:
        return Outcome.retry("busy")
    if f.reason == REASON_RINGING:
        return Outcome.retry("no answer")
    if f.reason == REASON_CONGESTION:
        return Outcome.retry("congestion")
    by_cause = _cause_outcome(f) if f.cause is not None else None
    if by_cause is not None:
        return by_cause
    if f.reason == REASON_HANGUP:
        return Outcome.retry("hung up before answering")
    cause = f", cause {f.cause} {f.cause_txt}" if f.cause else ""
    return Outcome.retry(f"Asterisk could not place the call (originate reason {f.reason}{cause}); "
                         f"if every call fails like this, check [asterisk].channel and the trunk")


def _machine_outcome(f: CallFacts) -> Outcome:
    if f.voicemail == "SUCCESS":
        return Outcome(OutcomeKind.VOICEMAIL, "an answering machine took the call; the short message was left")
    if f.voicemail is not None:
        return Outcome.retry(f"answering machine; the short message did not play (PLAYBACKSTATUS={f.voicemail})")
    if f.link_lost:
        return Outcome.device_down(f"{f.link_lost} while leaving a message on an answering machine",
                                   maybe_sent=True)
    return Outcome.retry("answering machine; the call ended before the short message was left")


def unanswered(f: CallFacts) -> bool:
    """The call rang out (nobody, and no machine, picked up)."""
    if f.originate == "Success" or f.link_lost:
        return False
    return f.reason == REASON_RINGING or f.cause in NO_ANSWER_CAUSES


# ---------------------------------------------------------------------------- one call
@dataclass
class _Call:
    action_id: str
    channel_id: str
    facts: CallFacts = field(default_factory=CallFacts)
    answered: threading.Event = field(default_factory=threading.Event)   # OriginateResponse seen
    ended: threading.Event = field(default_factory=threading.Event)      # Hangup seen or link lost
    channel: str = ""
    number: str = ""
    message_id: int | None = None

    def wake(self) -> None:
        self.answered.set()
        self.ended.set()


@dataclass
class _Callback:
    """A call to the box in progress: who called and what they are hearing."""

    number: str
    channel: str
    plan: CallbackPlan


# ---------------------------------------------------------------------------- the channel
class VoiceChannel:
    """Text-to-voice calls through one Asterisk over AMI."""

    kind = ChannelKind.VOICE

    def __init__(self, cfg: AsteriskConfig, tts: TtsConfig, name: str = "asterisk", desk: CallDesk | None = None):
        self.cfg = cfg
        self.name = name
        # Writes key presses and callbacks before they are answered; None: nothing to write
        # (a 1 is then only in the call's outcome, and the callback line stays silent).
        self.desk = desk
        self._callbacks: dict[str, _Callback] = {}
        self.rate_per_minute = cfg.calls_per_minute
        self.capacity = cfg.max_calls
        # The longest one call may take (see _place): the daemon waits this long when it stops.
        self.max_send_seconds = ACTION_TIMEOUT + cfg.ring_timeout + ORIGINATE_MARGIN + MAX_CALL_SECONDS + 5.0
        self.renderer = SpeechRenderer(tts)
        self._slots = threading.BoundedSemaphore(cfg.max_calls)
        self._lock = threading.Lock()
        self._calls: dict[str, _Call] = {}
        self._by_channel: dict[str, _Call] = {}
        self._health = DeviceHealth(DeviceState.STARTING, detail={"host": cfg.host, "port": cfg.port})
        self._link: AmiLink | None = None
        self._up = threading.Event()
        self._sink: EventSink | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._supervisor: threading.Thread | None = None
        self._audio: AudioServer | None = None
        self.originates = 0   # Originate actions written, for tests and benchmarks

    # -- lifecycle -------------------------------------------------------------
    def open(self, sink: EventSink) -> None:
        """Check the config, serve audio, log in to AMI and start the reconnect supervisor."""
        if self._supervisor is not None:
            return
        self._check_config()
        self._sink = sink
        self._stop.clear()
        if not self.cfg.audio_dir:
            self._audio = AudioServer(self.renderer.cache_dir, self.cfg.audio_listen)
            try:
                self._audio.start()
            except AudioServerError as exc:
                self._audio = None
                raise ChannelError(str(exc)) from None
        try:
            self._connect()
        except AmiError as exc:
            self._stop_audio()
            self._set_health(DeviceState.DOWN, str(exc))
            raise ChannelError(str(exc)) from None
        self._supervisor = threading.Thread(target=self._supervise, name=f"{self.name}-ami", daemon=True)
        self._supervisor.start()

    def _check_config(self) -> None:
        c = self.cfg
        try:
            for v in (c.host, c.username, c.secret, c.channel, c.context, c.extension, c.caller_id):
                ami_value(v)
            for v in (c.audio_url, c.audio_dir):
                ami_value(v, variable=True)
        except AmiValueError:
            raise ChannelError("[asterisk]: a setting holds a line break or (audio_url/audio_dir) a comma; "
                               "AMI cannot carry it safely") from None

    def close(self) -> None:
        """Stop reconnecting, resolve calls still in flight, log off, stop serving audio."""
        self._stop.set()
        self._wake.set()
        if self._supervisor:
            self._supervisor.join(10)
            self._supervisor = None
        self._lose_calls("gatewayd is shutting down")
        link, self._link = self._link, None
        if link:
            link.close()
        self._up.clear()
        self._stop_audio()

    def _stop_audio(self) -> None:
        if self._audio:
            self._audio.stop()
            self._audio = None

    def health(self) -> DeviceHealth:
        with self._lock:
            h = replace(self._health, detail=dict(self._health.detail))
            h.detail["calls_in_flight"] = len(self._calls)
        return h

    # -- connection ------------------------------------------------------------
    def _connect(self) -> None:
        link = AmiLink(self.cfg, self._on_event, self._on_down)
        link.login()
        self._link = link
        self._up.set()
        log.info("%s: logged in to Asterisk AMI at %s:%d as %s", self.name, self.cfg.host, self.cfg.port,
                 self.cfg.username)
        self._set_health(DeviceState.UP, "")

    def _supervise(self) -> None:
        delay = 0.5
        while not self._stop.is_set():
            link = self._link
            if link is not None and link.connected:
                delay = 0.5
                self._wake.wait(PING_INTERVAL)
                self._wake.clear()
                if self._stop.is_set() or not link.connected:
                    continue
                try:
                    if link.action("Ping", {}, timeout=ACTION_TIMEOUT) is None:
                        link.drop(f"Asterisk did not answer a Ping within {ACTION_TIMEOUT:.0f}s")
                except AmiError:
                    pass   # the drop was reported by the link itself
                continue
            try:
                self._connect()
            except AmiError as exc:
                self._set_health(DeviceState.DOWN, str(exc))
                self._stop.wait(delay)
                delay = min(RECONNECT_MAX, delay * 2)

    def _on_down(self, link: AmiLink, reason: str) -> None:
        if link is not self._link:
            return
        self._up.clear()
        log.warning("%s: %s; reconnecting", self.name, reason)
        self._set_health(DeviceState.DOWN, reason)
        self._lose_calls(reason)
        self._wake.set()

    def _lose_calls(self, reason: str) -> None:
        with self._lock:
            calls = list(self._calls.values())
        for call in calls:
            call.facts.link_lost = reason
            call.wake()

    def _set_health(self, state: DeviceState, error: str) -> None:
        with self._lock:
            changed = state is not self._health.state or (error and error != self._health.last_error)
            self._health.state = state
            if error or state is DeviceState.UP:
                self._health.last_error = error
        if changed and self._sink is not None:
            try:
                self._sink(DeviceEvent(self.name, self.health()))
            except Exception:
                log.exception("%s: event sink failed", self.name)

    # -- events ----------------------------------------------------------------
    def _on_event(self, event: Any) -> None:
        name, k = event.name, event.keys
        if name == "OriginateResponse":
            call = self._calls.get(k.get("ActionID", ""))
            if call:
                call.facts.originate = k.get("Response")
                call.facts.reason = _int(k.get("Reason"))
                call.channel = k.get("Channel", "")
                call.answered.set()
        elif name == "Hangup":
            call = self._by_channel.get(k.get("Uniqueid", ""))
            if call:
                call.facts.cause = _int(k.get("Cause"))
                call.facts.cause_txt = k.get("Cause-txt", "")
                call.facts.hung_up = True
                call.ended.set()
        elif name == "UserEvent":
            kind = k.get("UserEvent")
            if kind in ("GatewaydCallback", "GatewaydCallbackDigit"):
                self._callback_event(kind, k)
                return
            call = self._calls.get(k.get("GatewaydCall", ""))
            if call is None:
                return
            if kind == "GatewaydPlayed":
                call.facts.played = k.get("Status", "").strip() or "UNKNOWN"
            elif kind == "GatewaydAmd":
                call.facts.amd = k.get("Status", "").strip() or "UNKNOWN"
            elif kind == "GatewaydVoicemail":
                call.facts.voicemail = k.get("Status", "").strip() or "UNKNOWN"
            elif kind == "GatewaydThanked":
                call.facts.thanked = True
            elif kind == "GatewaydDigit":
                self._digit(call, k.get("Digit", "").strip(), _int(k.get("Repeats")) or 0)
        if name == "Hangup":
            self._callbacks.pop(k.get("Uniqueid", ""), None)

    def _digit(self, call: "_Call", digit: str, repeats_before: int) -> None:
        call.facts.digit = digit
        if digit == "0" and repeats_before < self.cfg.max_repeats:
            call.facts.repeats = repeats_before + 1
        elif digit == "1":
            # Not on the AMI reader thread: the write and the Setvar's response need it free.
            threading.Thread(target=self._confirm, args=(call,), name=f"{self.name}-key", daemon=True).start()

    def _confirm(self, call: "_Call") -> None:
        """Write the 1, then let the dialplan thank the member for it."""
        if self.desk is not None:
            try:
                self.desk.key_pressed(KeyPress(self.name, call.number, "1", message_id=call.message_id))
            except Exception:
                log.exception("%s: could not record the confirmation of message %s; not thanking for it",
                              self.name, call.message_id)
                return
        self._setvar(call.channel, {"GATEWAYD_STORED": "1"})

    def _setvar(self, channel: str, values: dict[str, str]) -> bool:
        link = self._link
        if not channel or link is None or not link.connected:
            return False
        try:
            for key, value in values.items():
                resp = link.action("Setvar", {"Channel": channel, "Variable": key, "Value": value})
                if resp is None or resp.is_error():
                    log.warning("%s: Setvar %s on %s refused: %s", self.name, key, channel,
                                resp.keys.get("Message", "") if resp is not None else "no answer")
                    return False
        except AmiError as exc:
            log.warning("%s: Setvar on %s failed: %s", self.name, channel, exc)
            return False
        return True

    # -- the callback line -----------------------------------------------------
    def _callback_event(self, kind: str, k: dict[str, str]) -> None:
        target = self._answer_callback if kind == "GatewaydCallback" else self._callback_digit
        threading.Thread(target=target, args=(dict(k),), name=f"{self.name}-callback", daemon=True).start()

    def _answer_callback(self, k: dict[str, str]) -> None:
        """A call to the box: record it, then tell the dialplan what to play."""
        uid, channel, number = k.get("Uniqueid", ""), k.get("Channel", ""), k.get("Number", "").strip()
        if self.desk is None:
            log.warning("%s: a call to the box from %s, but no desk is attached; ending it", self.name, number)
            return
        try:
            plan = self.desk.callback(self.name, number, datetime.now(timezone.utc))
        except Exception:
            log.exception("%s: could not record the callback from %s; the call ends unanswered", self.name, number)
            return
        try:
            values = self._callback_values(plan)
        except (TtsError, OSError, AmiValueError) as exc:
            log.error("%s: cannot prepare the callback audio: %s", self.name, exc)
            return
        self._callbacks[uid] = _Callback(number, channel, plan)
        self._setvar(channel, values)

    def _callback_values(self, plan: CallbackPlan) -> dict[str, str]:
        r, lang = self.renderer, plan.language
        if not plan.member:
            return {"GATEWAYD_NEUTRAL": self._publish([r.render(CALLBACK_NEUTRAL[lang], lang)])[0],
                    "GATEWAYD_READY": "stranger"}
        items = [r.render(item.text, lang) for item in plan.items]
        bye = (CALLBACK_BYE if items else CALLBACK_NONE)[lang].format(hours=f"{plan.hours:g}")
        fixed = [r.render(PROMPTS[lang], lang), r.render(THANKS[lang], lang), r.render(bye, lang)]
        urls = self._publish(fixed + items)
        values = {"GATEWAYD_PROMPT": urls[0], "GATEWAYD_THANKS": urls[1], "GATEWAYD_BYE": urls[2],
                  "GATEWAYD_COUNT": str(len(items)), "GATEWAYD_CONFIRM_WAIT": f"{self.cfg.confirm_wait:g}",
                  "GATEWAYD_MAX_REPEATS": str(self.cfg.max_repeats)}
        values.update({f"GATEWAYD_ITEM_{i + 1}": url for i, url in enumerate(urls[3:])})
        values["GATEWAYD_READY"] = "member"   # last: the dialplan starts as soon as it sees this
        return values

    def _callback_digit(self, k: dict[str, str]) -> None:
        cb = self._callbacks.get(k.get("Uniqueid", ""))
        item, digit = _int(k.get("Item")), k.get("Digit", "").strip()
        if cb is None or digit != "1" or item is None or not 1 <= item <= len(cb.plan.items):
            return
        if self.desk is not None:
            try:
                self.desk.key_pressed(KeyPress(self.name, cb.number, "1", alert_id=cb.plan.items[item - 1].alert_id))
            except Exception:
                log.exception("%s: could not record a confirmation on the callback line", self.name)
                return
        self._setvar(cb.channel, {f"GATEWAYD_STORED_{item}": "1"})

    # -- sending ---------------------------------------------------------------
    def send(self, delivery: Delivery) -> Outcome:
        """Call the member, play the message, report what happened (never raises)."""
        if not _NUMBER_RE.fullmatch(delivery.number or ""):
            return Outcome.failed(f"invalid number for a voice call: {delivery.number[:30]!r}")
        try:
            audio = self.renderer.render_call(delivery.text, delivery.language, self.cfg.callback_number)
        except TtsUnavailable as exc:
            return Outcome.device_down(f"speech rendering unavailable: {exc}")
        except TtsError as exc:
            return Outcome.failed(f"speech could not be rendered: {exc}")
        if delivery.drill:
            return Outcome(OutcomeKind.DELIVERED, f"drill: speech rendered ({audio.seconds:.1f}s), no call placed")
        try:
            urls = self._publish(audio.files)
        except OSError as exc:
            return Outcome.device_down(f"cannot write audio into audio_dir {self.cfg.audio_dir}: {exc}")
        except AmiValueError as exc:
            return Outcome.failed(str(exc))
        with self._slots:
            outcome = self._call(delivery, urls)
        return outcome

    def _publish(self, names: Iterable[str]) -> list[str]:
        """Where Asterisk finds the files: URLs, or paths (no extension) in audio_dir."""
        if self.cfg.audio_dir:
            out = []
            for n in names:
                dst = Path(self.cfg.audio_dir) / n
                if not dst.exists():
                    tmp = dst.with_name(f".{n}.tmp")
                    shutil.copyfile(self.renderer.path(n), tmp)
                    tmp.chmod(0o644)
                    tmp.replace(dst)
                # Asterisk picks the format from the extension it adds itself.
                out.append(str(dst.with_suffix("")))
            return out
        if self._audio is None:
            raise OSError("the audio server is not running (channel not open)")
        return [self._audio.url(n, self.cfg.audio_url) for n in names]

    def _call(self, delivery: Delivery, urls: list[str]) -> Outcome:
        link = self._link
        if link is None or not link.connected:
            if not self._up.wait(DOWN_WAIT):
                return Outcome.device_down(f"Asterisk AMI is down: {self._health.last_error or 'not connected'}")
            link = self._link
            if link is None:        # up and down again meanwhile
                return Outcome.device_down(f"Asterisk AMI is down: {self._health.last_error or 'not connected'}")
        call = _Call(action_id=f"gwd-{delivery.message_id}-{uuid.uuid4().hex[:8]}", channel_id=str(uuid.uuid4()),
                     number=delivery.number, message_id=delivery.message_id)
        with self._lock:
            self._calls[call.action_id] = call
            self._by_channel[call.channel_id] = call
        try:
            outcome = self._place(link, call, delivery, urls)
            if (outcome.kind is OutcomeKind.RETRY and delivery.attempt == 1 and self.cfg.quick_recall_seconds > 0
                    and unanswered(call.facts)):
                # Phones silence unknown callers, but let a second call within minutes ring through.
                outcome = replace(outcome, retry_after=self.cfg.quick_recall_seconds,
                                  detail=f"{outcome.detail}; quick re-call in {self.cfg.quick_recall_seconds:g} s")
            return outcome
        finally:
            with self._lock:
                self._calls.pop(call.action_id, None)
                self._by_channel.pop(call.channel_id, None)

    def _originate_fields(self, call: _Call, number: str, urls: list[str]) -> tuple[dict[str, str], dict[str, str]]:
        c = self.cfg
        keys = {"Channel": c.channel.replace("{number}", number), "Context": c.context,
                "Exten": c.extension, "Priority": "1", "Timeout": str(int(c.ring_timeout * 1000)),
                "Async": "true", "ActionID": call.action_id, "ChannelId": call.channel_id}
        if c.caller_id:
            keys["CallerID"] = c.caller_id
        variables = {"GATEWAYD_CALL": call.action_id, "GATEWAYD_AUDIO": urls[0], "GATEWAYD_PROMPT": urls[1],
                     "GATEWAYD_THANKS": urls[2], "GATEWAYD_VOICEMAIL": urls[3],
                     "GATEWAYD_CONFIRM_WAIT": f"{c.confirm_wait:g}", "GATEWAYD_MAX_REPEATS": str(c.max_repeats),
                     "GATEWAYD_AMD": "yes" if c.amd else "no"}
        return keys, variables

    def _place(self, link: AmiLink, call: _Call, delivery: Delivery, urls: list[str]) -> Outcome:
        keys, variables = self._originate_fields(call, delivery.number, urls)
        try:
            resp = link.action("Originate", keys, variables)
        except AmiValueError as exc:
            return Outcome.failed(f"not dialled: {exc}")
        except AmiError as exc:
            # The write may have reached Asterisk before the link broke.
            return Outcome.device_down(f"Originate not confirmed: {exc}", maybe_sent=True)
        with self._lock:
            self.originates += 1
        if call.facts.link_lost:
            return classify(call.facts)
        if resp is None:
            return Outcome.device_down(f"Asterisk did not answer the Originate within {ACTION_TIMEOUT:.0f}s",
                                       maybe_sent=True)
        if resp.is_error():
            return Outcome.device_down(f"Asterisk refused the Originate: {resp.keys.get('Message', 'error')}; "
                                       f"check [asterisk] channel/context/extension and the AMI user's "
                                       f"write = originate permission")
        if not call.answered.wait(self.cfg.ring_timeout + ORIGINATE_MARGIN):
            return Outcome.device_down("Asterisk never reported the outcome of the Originate", maybe_sent=True)
        if call.facts.originate == "Success":
            if not call.ended.wait(MAX_CALL_SECONDS):
                self._hang_up(link, call)
        elif not call.facts.link_lost and call.facts.reason not in (REASON_RINGING, REASON_BUSY, REASON_CONGESTION):
            # The reason alone is ambiguous; the Hangup carrying the cause code may
            # trail the OriginateResponse.
            call.ended.wait(CAUSE_GRACE)
        return classify(call.facts)

    def _hang_up(self, link: AmiLink, call: _Call) -> None:
        if call.channel:
            try:
                link.action("Hangup", {"Channel": call.channel})
            except AmiError:
                pass
        call.ended.wait(5)


def _int(value: object) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


# ---------------------------------------------------------------------------- doctor
_TECH_MODULES = {"pjsip": "chan_pjsip", "sip": "chan_sip", "iax2": "chan_iax2", "dahdi": "chan_dahdi"}


def _required_modules(cfg: AsteriskConfig) -> list[str]:
    mods = ["app_playback", "app_read", "app_userevent", "app_waitforcond"]
    if cfg.amd:
        mods += ["app_amd", "app_waitforsilence"]
    if not cfg.audio_dir:
        mods.append("res_http_media_cache")
    tech = cfg.channel.split("/", 1)[0].lower()
    if tech in _TECH_MODULES:
        mods.append(_TECH_MODULES[tech])
    return mods


def doctor(cfg: AsteriskConfig, tts: TtsConfig | None = None) -> list[Check]:
    """Probe Asterisk the way the voice channel uses it and say exactly what is wrong."""
    checks: list[Check] = [_check_speech(tts or TtsConfig())]
    where = f"{cfg.host}:{cfg.port}"
    listed: list[Any] = []   # the ListDialplan events answering ShowDialPlan

    def keep_listing(event: Any) -> None:
        if event.name in ("ListDialplan", "ShowDialPlanComplete"):
            listed.append(event)

    link = AmiLink(cfg, on_event=keep_listing, on_down=lambda link, reason: None, connect_timeout=3.0)
    try:
        link.login()
    except AmiConnectError as exc:
        return checks + [Check(False, "Asterisk AMI reachable", str(exc))]
    except AmiAuthError as exc:
        return checks + [Check(True, "Asterisk AMI reachable", where), Check(False, "Asterisk AMI login", str(exc))]
    except AmiValueError as exc:
        return checks + [Check(False, "Asterisk AMI login", f"[asterisk] username/secret: {exc}")]
    try:
        checks.append(Check(True, "Asterisk AMI reachable", f"{where} (AMI {link.version})"))
        checks.append(Check(True, "Asterisk AMI login", f"user {cfg.username}"))
        checks += [_check_module(link, m) for m in _required_modules(cfg)]
        checks.append(_check_dialplan(link, cfg))
        if checks[-1].ok:
            checks.append(_check_reporting(cfg, listed))
    finally:
        link.close()
    return checks


def _check_module(link: AmiLink, module: str) -> Check:
    what = f"Asterisk module {module}"
    try:
        resp = link.action("ModuleCheck", {"Module": module})
    except AmiError as exc:
        return Check(False, what, str(exc))
    if resp is None:
        return Check(False, what, "no answer from Asterisk")
    if not resp.is_error():
        return Check(True, what, "loaded")
    msg = resp.keys.get("Message", "")
    if "permission" in msg.lower():
        return Check(False, what, "cannot tell: the AMI user lacks write = system (see asterisk/README.md)")
    return Check(False, what, f"not loaded ({msg or 'error'}); run 'module load {module}' in the Asterisk "
                              f"CLI and add 'load = {module}.so' to modules.conf")


def _check_dialplan(link: AmiLink, cfg: AsteriskConfig) -> Check:
    what = f"dialplan {cfg.extension}@{cfg.context}"
    try:
        resp = link.action("ShowDialPlan", {"Context": cfg.context, "Extension": cfg.extension})
    except AmiError as exc:
        return Check(False, what, str(exc))
    if resp is None:
        return Check(False, what, "no answer from Asterisk")
    if resp.is_error():
        msg = resp.keys.get("Message", "")
        if "permission" in msg.lower():
            return Check(False, what, "cannot tell: the AMI user lacks write = reporting")
        return Check(False, what, f"{msg or 'not found'}; install asterisk/extensions_gatewayd.conf "
                                  f"(#include it from extensions.conf) or fix [asterisk] context/extension")
    return Check(True, what, "present")


def _check_reporting(cfg: AsteriskConfig, listed: list[Any], wait: float = 3.0) -> Check:
    """The dialplan must report PLAYBACKSTATUS (GatewaydPlayed), or no call can ever count as delivered."""
    what = f"dialplan {cfg.extension}@{cfg.context} reports playback"
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and not any(e.name == "ShowDialPlanComplete" for e in listed):
        time.sleep(0.05)
    apps = [(e.keys.get("Application", ""), e.keys.get("AppData", "")) for e in listed if e.name == "ListDialplan"]
    if any(app.lower() == "userevent" and data.startswith("GatewaydPlayed") for app, data in apps):
        return Check(True, what, "UserEvent GatewaydPlayed present")
    return Check(False, what, "no UserEvent(GatewaydPlayed,...) after the Playback: every call would count as "
                              "not delivered; use asterisk/extensions_gatewayd.conf as shipped")


def _check_speech(tts: TtsConfig) -> Check:
    """Render a word in every language with the engine configured for it (espeak-ng or a Piper voice)."""
    what = "speech rendering (espeak-ng / Piper, sox)"
    try:
        with tempfile.TemporaryDirectory(prefix="gatewayd-doctor-") as tmp:
            r = SpeechRenderer(replace(tts, cache_dir=tmp))
            t0 = time.monotonic()
            engines = []
            for lang in ("nl", "fr", "de", "en"):
                r.render("Test.", lang)
                engines.append(f"{lang} {r.engine_for(lang)}")
            return Check(True, what, f"{', '.join(engines)} in {(time.monotonic() - t0) * 1000:.0f} ms")
    except TtsError as exc:
        return Check(False, what, str(exc))
