"""`gatewayd modems scan`: which serial port is the modem, and what is it?

A USB stick shows up as several serial ports (ttyUSB0..3); one or two answer
AT, the others carry GPS or diagnostics or nothing. Every candidate is probed
with a short AT exchange and tight timeouts, all ports at once: does it answer
AT, manufacturer and model, IMEI, SIM state, ICCID and IMSI (masked),
operator, registration per domain, signal. Ports with the same IMEI are one
modem: one of them is recommended, and a ready `[[modems]]` block printed.

Read-only by design: never an SMS, never a PIN (a wrong PIN counts toward a
PUK lock), never a reset. The only setting sent is AT+CxREG=2, which some
modems need before +CxREG? answers sensibly and which lasts until the modem
restarts (gatewayd sets it anyway).
"""
from __future__ import annotations

import glob
import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

from .channels.modem import AtError, AtPort, ModemError, PortGone
from .channels.registration import Domain, per_domain, verdict
from .channels.registration import parse as parse_registration

BY_ID_GLOB = "/dev/serial/by-id/*"
TTY_GLOBS = ("/dev/ttyUSB*", "/dev/ttyACM*")
TIMEOUT = 1.0          # seconds per command: a modem answers in milliseconds, a silent port never
HILINK_URL = "http://192.168.8.1/"    # where HiLink dongles put their web API


@dataclass
class PortReport:
    path: str
    device: str                        # the tty the path resolves to
    answers: bool = False
    problem: str = ""                  # why it could not be probed or does not answer
    manufacturer: str = ""
    model: str = ""
    imei: str = ""
    sim: str = ""                      # READY, SIM PIN, not inserted ...
    iccid: str = ""                    # masked
    imsi: str = ""                     # masked
    operator: str = ""
    network: str = ""                  # registered / not registered / registration unclear
    registration: dict[str, str] = field(default_factory=dict)
    signal: int | None = None
    pdu_mode: bool = False
    use: bool = False                  # the port to put in the config for this modem
    note: str = ""                     # why (not) this one


def candidates(by_id_glob: str = BY_ID_GLOB, tty_globs: tuple[str, ...] = TTY_GLOBS) -> list[tuple[str, str]]:
    """(path, device) to probe: stable by-id names first, then ttys that have none."""
    seen: set[str] = set()
    out = []
    for path in sorted(glob.glob(by_id_glob)) + sorted(p for g in tty_globs for p in glob.glob(g)):
        device = os.path.realpath(path)
        if device not in seen:
            seen.add(device)
            out.append((path, device))
    return out


def mask(value: str, keep_start: int, keep_end: int = 2) -> str:
    """'8932003101234567891' -> '8932*************91': enough to tell SIMs apart, not to copy one."""
    if len(value) <= keep_start + keep_end:
        return "*" * len(value)
    return value[:keep_start] + "*" * (len(value) - keep_start - keep_end) + value[-keep_end:]


def scan(by_id_glob: str = BY_ID_GLOB, tty_globs: tuple[str, ...] = TTY_GLOBS,
         timeout: float = TIMEOUT) -> list[PortReport]:
    """Probe every candidate port at once; mark the port to use for each modem."""
    ports = candidates(by_id_glob, tty_globs)
    if not ports:
        return []
    with ThreadPoolExecutor(max_workers=min(16, len(ports))) as pool:
        reports = list(pool.map(lambda pd: probe(pd[0], pd[1], timeout), ports))
    recommend(reports)
    return reports


def probe(path: str, device: str, timeout: float = TIMEOUT) -> PortReport:
    report = PortReport(path, device)
    port = AtPort(path, 115200, on_urc=lambda urc: None)
    try:
        port.open()
    except PortGone as exc:
        report.problem = str(exc)
        return report
    try:
        _converse(port, report, timeout)
    except ModemError as exc:          # AtTimeout or PortGone part-way
        report.problem = report.problem or str(exc)
    finally:
        port.close()
    return report


def _ask(port: AtPort, cmd: str, timeout: float, expect: tuple[str, ...] = ()) -> list[str] | None:
    try:
        return port.command(cmd, timeout, expect)
    except AtError:
        return None


def _answers_at(port: AtPort, timeout: float) -> bool:
    for _ in range(2):
        try:
            port.command("AT", timeout)
            return True
        except AtError:
            return True        # any final result is an answer (some sticks say ERROR to the first AT)
        except ModemError:
            continue
    return False


def _converse(port: AtPort, r: PortReport, timeout: float) -> None:
    if not _answers_at(port, timeout):
        r.problem = "no answer to AT (not the modem's AT port, or the modem is busy or hung)"
        return
    r.answers = True
    _ask(port, "ATE0", timeout)
    _ask(port, "AT+CMEE=1", timeout)
    r.manufacturer = _line(_ask(port, "AT+CGMI", timeout))
    r.model = _line(_ask(port, "AT+CGMM", timeout))
    r.imei = re.sub(r"\D", "", _line(_ask(port, "AT+CGSN", timeout)))
    r.pdu_mode = bool(re.search(r"\b0\b", _value(_ask(port, "AT+CMGF=?", timeout, ("+CMGF:",)), "+CMGF:")))
    cpin = _ask(port, "AT+CPIN?", timeout, ("+CPIN:",))
    r.sim = _value(cpin, "+CPIN:") if cpin is not None else "not inserted or not readable"
    _radio(port, r, timeout)
    # Last, as a SIM that is still starting can be slow to answer them: a command that times
    # out ends the probe (its late answer would be taken for the next one's) with what is known.
    iccid = _ask(port, "AT+CCID", timeout, ("+CCID:",)) or _ask(port, "AT^ICCID?", timeout, ("^ICCID:",))
    digits = re.sub(r"[^0-9A-Fa-f]", "", _value(iccid, "+CCID:") or _value(iccid, "^ICCID:") or _line(iccid))
    r.iccid = mask(digits, 4) if digits else ""
    imsi = re.sub(r"\D", "", _line(_ask(port, "AT+CIMI", timeout)))
    r.imsi = mask(imsi, 5) if imsi else ""


def _radio(port: AtPort, r: PortReport, timeout: float) -> None:
    csq = re.search(r"(\d+)\s*,", _value(_ask(port, "AT+CSQ", timeout, ("+CSQ:",)), "+CSQ:"))
    r.signal = int(csq.group(1)) if csq else None
    answers = {}
    for domain in Domain:
        for n in (2, 1):
            if _ask(port, f"AT{domain.command}={n}", timeout) is not None:
                break
        head = domain.command + ":"
        lines = _ask(port, f"AT{domain.command}?", timeout, (head,))
        if lines is not None:
            answers[domain] = parse_registration(domain, _value(lines, head))
    cops = re.search(r'"([^"]*)"', _value(_ask(port, "AT+COPS?", timeout, ("+COPS:",)), "+COPS:"))
    r.operator = cops.group(1) if cops else ""
    r.network = verdict(answers, r.operator).value
    r.registration = per_domain(answers)


def _line(lines: list[str] | None) -> str:
    return (lines or [""])[0].strip()


def _value(lines: list[str] | None, prefix: str) -> str:
    for ln in lines or ():
        if ln.startswith(prefix):
            return ln[len(prefix):].strip()
    return ""


def recommend(reports: list[PortReport]) -> None:
    """One port per modem (same IMEI = same modem): the first that answers AT and does PDU mode."""
    by_modem: dict[str, list[PortReport]] = {}
    for r in reports:
        if r.answers:
            by_modem.setdefault(r.imei or r.device, []).append(r)
    for group in by_modem.values():
        best = next((r for r in group if r.pdu_mode), None)
        if best is None:
            for r in group:
                r.note = (f"answers AT but stopped answering part-way ({r.problem}): scan again" if r.problem
                          else "answers AT but refuses PDU mode (AT+CMGF=0): gatewayd cannot send through it")
            continue
        best.use = True
        best.note = "use this port"
        for r in group:
            if r is not best:
                r.note = f"another port of the same modem (IMEI {r.imei}); use {best.path}"


def config_blocks(reports: list[PortReport]) -> str:
    """Ready [[modems]] blocks for the ports to use."""
    blocks = []
    for i, r in enumerate((r for r in reports if r.use), start=1):
        pin = '""' + ("   # the SIM asks for a PIN: put it here" if r.sim == "SIM PIN" else "")
        what = " ".join(x for x in (r.manufacturer, r.model) if x) or "modem"
        blocks.append(f"# {what}, IMEI {r.imei or '?'}, SIM {r.iccid or '?'}\n"
                      f"[[modems]]\nname = \"modem{i}\"\nport = \"{r.path}\"\nbaudrate = 115200\n"
                      f"pin = {pin}\nsms_per_minute = 20\n")
    return "\n".join(blocks)


@dataclass
class HilinkFound:
    url: str
    model: str


def find_hilink(url: str = HILINK_URL, timeout: float = TIMEOUT) -> HilinkFound | None:
    """A HiLink dongle's web API at URL (these have no AT port): asks its model, needs no login."""
    if not url:
        return None
    from .channels.hilink_api import probe
    model = probe(url, timeout)
    return HilinkFound(url, model) if model else None


def hilink_block(found: HilinkFound) -> str:
    return (f"# {found.model} in HiLink mode (web API, no AT port)\n[[hilink]]\nname = \"dongle1\"\n"
            f"url = \"{found.url}\"\nusername = \"admin\"\npassword = \"\"   # the dongle's web login: put it here\n"
            f"sms_per_minute = 20\n")


def render(reports: list[PortReport], hilink: HilinkFound | None = None) -> str:
    """Human-readable report: one paragraph per port, then what to put in the config."""
    if hilink is not None:
        head = (f"HiLink dongle {hilink.model} answers at {hilink.url} (not a serial port):\n\n"
                f"{hilink_block(hilink)}\n")
        return head + (render(reports) if reports else "")
    if not reports:
        return ("no serial ports found (looked in /dev/serial/by-id, /dev/ttyUSB*, /dev/ttyACM*).\n"
                "Is the stick plugged in (dmesg)? A stick that shows up as a CD-ROM or a network card "
                "needs usb-modeswitch, or is a HiLink model: see README, 'Picking and setting up a modem'.\n")
    out = []
    for r in reports:
        out.append(f"{r.path}" + (f" -> {r.device}" if r.device != r.path else ""))
        if not r.answers:
            out.append(f"  silent: {r.problem}")
            continue
        out.append(f"  answers AT: {' '.join(x for x in (r.manufacturer, r.model) if x) or '?'}, IMEI {r.imei or '?'}")
        out.append(f"  SIM: {r.sim or '?'}, ICCID {r.iccid or '?'}, IMSI {r.imsi or '?'}")
        sig = "unknown" if r.signal is None else "none (99)" if r.signal == 99 else f"{r.signal}/31"
        domains = " · ".join(f"{k.upper()}: {v}" for k, v in r.registration.items())
        out.append(f"  network: {r.network} ({domains}); operator {r.operator or '?'}; signal {sig}")
        if r.problem:
            out.append(f"  not all asked: {r.problem}")
        if r.note:
            out.append(f"  -> {r.note}")
    blocks = config_blocks(reports)
    if blocks:
        out += ["", "Put this in /etc/gatewayd/gatewayd.toml (a by-id path survives re-plugging):", "", blocks]
    else:
        out += ["", "No port answers as a usable modem. A HiLink stick (web page at 192.168.8.1) has no AT port: "
                    "configure it as [[hilink]]. See README, 'Picking and setting up a modem'."]
    return "\n".join(out) + "\n"


def as_json(reports: list[PortReport], hilink: HilinkFound | None = None) -> str:
    config = "\n".join(b for b in (hilink_block(hilink) if hilink else "", config_blocks(reports)) if b)
    return json.dumps({"ports": [asdict(r) for r in reports], "hilink": asdict(hilink) if hilink else None,
                       "config": config}, indent=2)


def usable(reports: list[PortReport], hilink: HilinkFound | None = None) -> bool:
    return hilink is not None or any(r.use for r in reports)


__all__ = ["scan", "probe", "candidates", "recommend", "render", "as_json", "config_blocks", "mask", "usable",
           "PortReport", "find_hilink", "HilinkFound"]
