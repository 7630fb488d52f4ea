"""SMS through a USB GSM modem: AT commands over a serial port, PDU mode.

Layers, bottom up:

* `AtPort` - one serial port, one reader thread, one command at a time. It
  splits what the modem says into the answer of the command in flight and
  unsolicited result codes (URCs: +CMTI, +CDS, ^RSSI ...), wherever in the
  answer those arrive. Every wait has a timeout; a vanished port raises
  `PortGone` instead of hanging.
* `ModemSession` - the modem's conversation: start-up (echo off, SIM PIN,
  PDU mode, where reports and new messages go, AT+CMMS=2 to keep the radio
  link up between consecutive messages), status (+CSQ, +CREG/+CGREG/+CEREG,
  +COPS; registration is evidence, never a gate: see registration.py),
  sending one PDU, reading and deleting a stored message.
* `ModemChannel` - the Channel protocol for the dispatcher, plus a supervisor
  thread that (re)connects with backoff, resets a modem that stopped
  answering, and turns URCs into DeliveryReport / InboundText events.
* `doctor()` - the same session, run once, explained line by line.

Why not python-gsmmodem-new's `GsmModem`/`SerialComms` (0.13) underneath:
`GsmModem.connect()` sends AT+CMEE=1 unconditionally and gives up when the
modem refuses it (Huawei sticks do), and probes commands such as AT+CLAC and
AT+CVHU the same way; `SerialComms` appends every line that arrives while a
command is pending to that command's answer, so a +CMTI or +CDS arriving
mid-command is lost; its reader thread dies silently on a non-UTF-8 byte
(UnicodeDecodeError is not a SerialException) and forces RTS/CTS + DSR/DTR
flow control. Patching all of that would be a fork. So the transport drives
pyserial directly, and the PDUs come from gatewayd.sms (see why there).
The library stays the independent PDU decoder of our test modem emulator.
"""
from __future__ import annotations

import errno
import hashlib
import logging
import os
import queue
import random
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import serial

from .. import sms as smslib
from ..config import ModemConfig, SmsConfig
from ..phone import normalise, redact
from .base import ChannelKind, Check, Delivery, DeliveryReport, DeviceState, InboundText, Outcome, OutcomeKind
from .network_watch import NETWORK_HOLD_START, NetworkWatch
from .registration import Domain, Registration, Verdict, per_domain, registered_flag, summary, verdict
from .registration import parse as parse_registration
from .supervised import SupervisedDevice

log = logging.getLogger(__name__)

CTRL_Z = b"\x1a"

# Lines the modem may print on its own. Some share a prefix with an answer
# (+CREG:, +CPIN:, +CFUN:): they count as the answer while that command runs.
URC_PREFIXES = ("+CMTI:", "+CDS:", "+CDSI:", "+CMT:", "+CBM:", "+CREG:", "+CGREG:", "+CEREG:", "+CPIN:",
                "+CFUN:", "+CUSD:", "+CRING:", "+CLIP:", "+CIEV:", "+PBREADY", "^", "RING", "RDY",
                "Call Ready", "SMS Ready", "NO CARRIER", "+QIND:", "+STIN:", "*PSUTTZ", "DST:", "+CTZV:")
# URCs whose next line (the PDU) belongs to them.
URC_WITH_BODY = ("+CDS:", "+CMT:", "+CBM:")
FINAL_RE = re.compile(r"^(OK|ERROR|NO CARRIER|COMMAND NOT SUPPORT|\+CM[ES] ERROR:\s*(.*))$")


# ====================================================================== errors

class ModemError(Exception):
    """Base for modem trouble; the message says what failed and what to check."""


class PortGone(ModemError):
    """The serial port vanished (USB unplugged) or cannot be opened."""


class AtTimeout(ModemError):
    """The modem did not finish answering in time."""


def shown(command: str) -> str:
    """COMMAND as it may appear in errors and logs: a SIM PIN never does."""
    return re.sub(r'(?i)^(AT\+CPIN=).*', r"\1****", command)


class AtError(ModemError):
    """The modem answered ERROR, +CME ERROR or +CMS ERROR."""

    def __init__(self, command: str, final: str):
        command = shown(command)
        self.command = command
        self.final = final
        m = re.match(r"\+CM([ES]) ERROR:\s*(\d+)", final)
        self.kind = f"cm{m.group(1).lower()}" if m else "error"
        self.code = int(m.group(2)) if m else None
        super().__init__(f"{command} -> {final}")


class SimError(ModemError):
    """The SIM is missing, locked, or rejected the PIN; needs a person, not a retry."""


# ====================================================================== transport

@dataclass
class _Pending:
    command: str
    expect: tuple[str, ...]
    lines: list[str] = field(default_factory=list)
    final: str | None = None
    done: threading.Event = field(default_factory=threading.Event)
    prompt: threading.Event = field(default_factory=threading.Event)


class AtPort:
    """A serial port speaking AT: one command at a time, URCs handed to ON_URC."""

    def __init__(self, path: str, baudrate: int, on_urc: Callable[[tuple[str, ...]], None],
                 on_gone: Callable[[], None] | None = None):
        self.path = path
        self.baudrate = baudrate
        self._on_urc = on_urc
        self._on_gone = on_gone
        self._serial: serial.Serial | None = None
        self._reader: threading.Thread | None = None
        self._pending: _Pending | None = None
        self._body_for: str | None = None      # URC header waiting for its PDU line
        self._lock = threading.Lock()           # one command at a time
        self._gone = threading.Event()
        self._closing = False

    def open(self) -> None:
        """Open the port; raise PortGone saying why it cannot be opened."""
        if not os.path.exists(self.path):
            raise PortGone(f"port {self.path} does not exist: is the modem plugged in? see dmesg and "
                           f"ls -l /dev/serial/by-id/")
        try:
            # No hardware flow control: many USB modems do not wire it and ptys have none.
            self._serial = serial.Serial(self.path, self.baudrate, timeout=0.2, write_timeout=5,
                                         rtscts=False, dsrdtr=False, exclusive=True)
        except serial.SerialException as exc:
            raise PortGone(_open_error(self.path, exc)) from None
        try:
            self._serial.reset_input_buffer()   # a late answer from before a reset is not ours
        except (serial.SerialException, OSError):
            pass
        self._gone.clear()
        self._closing = False
        self._reader = threading.Thread(target=self._read_loop, name=f"at-{os.path.basename(self.path)}",
                                        daemon=True)
        self._reader.start()

    def close(self) -> None:
        self._closing = True
        s, self._serial = self._serial, None
        if s is not None:
            try:
                s.close()
            except Exception:
                pass
        if self._reader and self._reader is not threading.current_thread():
            self._reader.join(timeout=2)

    @property
    def gone(self) -> bool:
        return self._gone.is_set()

    # ------------------------------------------------------------ reading

    def _read_loop(self) -> None:
        buf = bytearray()
        s = self._serial
        try:
            while not self._closing and s is not None:
                data = s.read(s.in_waiting or 1)
                if data:
                    buf += data
                    buf = self._consume(buf)
        except Exception as exc:   # SerialException, OSError (EIO), TypeError on a closed fd
            if not self._closing:
                log.warning("port %s: %s", self.path, exc)
                self._mark_gone()

    def _mark_gone(self) -> None:
        self._gone.set()
        p = self._pending
        if p is not None:
            p.done.set()
            p.prompt.set()
        if self._on_gone is not None:
            self._on_gone()

    def _consume(self, buf: bytearray) -> bytearray:
        while True:
            stripped = buf.lstrip(b"\r\n")
            p = self._pending
            if p is not None and not p.prompt.is_set() and stripped.startswith(b">"):
                p.prompt.set()               # "> " is the +CMGS prompt, it has no line end
                buf = stripped[1:]
                if buf.startswith(b" "):
                    buf = buf[1:]
                continue                     # whatever follows the prompt (a URC) is still read
            ends = [i for i in (buf.find(b"\r"), buf.find(b"\n")) if i >= 0]
            if not ends:
                return buf
            cut = min(ends)
            line = buf[:cut].decode("latin-1").strip()   # latin-1: no byte can break the reader
            buf = buf[cut + 1:]
            if line:
                self._line(line)

    def _line(self, line: str) -> None:
        if self._body_for is not None:
            header, self._body_for = self._body_for, None
            self._on_urc((header, line))
            return
        p = self._pending
        if p is not None and line.upper().startswith("AT"):
            return                            # echo of our own command
        if self._is_urc(line, p):
            if line.startswith(URC_WITH_BODY):
                self._body_for = line
            else:
                self._on_urc((line,))
            return
        if p is None or p.done.is_set():
            log.debug("port %s: stray line %r", self.path, line)
            return
        if FINAL_RE.match(line):
            p.final = line
            p.done.set()
            p.prompt.set()      # a refusal instead of the '>' prompt must not wait for the prompt timeout
        else:
            p.lines.append(line)

    @staticmethod
    def _is_urc(line: str, p: _Pending | None) -> bool:
        if p is not None and any(line.startswith(e) for e in p.expect):
            return False
        return line.startswith(URC_PREFIXES)

    # ------------------------------------------------------------ writing

    def _write(self, data: bytes) -> None:
        s = self._serial
        if s is None or self.gone:
            raise PortGone(f"port {self.path} is closed or gone")
        try:
            s.write(data)
        except serial.SerialTimeoutException:
            raise AtTimeout(f"port {self.path}: write blocked for 5 s (flow control stuck?)") from None
        except (serial.SerialException, OSError, TypeError) as exc:
            self._mark_gone()
            raise PortGone(f"port {self.path} vanished while writing: {exc}") from None

    def command(self, cmd: str, timeout: float, expect: tuple[str, ...] = ()) -> list[str]:
        """Send CMD, return its information lines; AtError on ERROR, AtTimeout, PortGone."""
        with self._lock:
            p = self._start(cmd, expect)
            try:
                self._write(cmd.encode("ascii") + b"\r")
                return self._finish(p, timeout)
            finally:
                self._pending = None

    def _start(self, cmd: str, expect: tuple[str, ...]) -> _Pending:
        if self.gone:
            raise PortGone(f"port {self.path} is gone")
        p = _Pending(cmd, expect)
        self._pending = p
        return p

    def _finish(self, p: _Pending, timeout: float) -> list[str]:
        if not p.done.wait(timeout):
            raise AtTimeout(f"{shown(p.command)}: no answer within {timeout:g} s")
        if p.final is None:
            raise PortGone(f"port {self.path} vanished during {shown(p.command)}")
        if p.final != "OK":
            raise AtError(p.command, p.final)
        return p.lines

    def send_pdu(self, pdu: smslib.SubmitPdu, prompt_timeout: float, send_timeout: float) -> tuple[list[str], bool]:
        """AT+CMGS=<len>, wait for '> ', write hex PDU + Ctrl-Z. Returns (lines, written).

        Raises as `command`; the exception carries `.written` = True once the
        PDU and Ctrl-Z were handed to the port (the message may be on the air).
        """
        if not re.fullmatch(r"[0-9A-F]+", pdu.hex):
            # Only hex can follow the prompt, so nothing in a text can end or add a command.
            raise ValueError("PDU must be upper-case hexadecimal")
        with self._lock:
            p = self._start(f"AT+CMGS={pdu.tpdu_length}", ("+CMGS:",))
            written = False
            try:
                self._write(p.command.encode("ascii") + b"\r")
                if not p.prompt.wait(prompt_timeout) and not p.done.is_set():
                    self._write(b"\x1b")       # leave prompt state if the '>' got lost
                    raise AtTimeout(f"{p.command}: no '>' prompt within {prompt_timeout:g} s")
                if self.gone:
                    raise PortGone(f"port {self.path} vanished waiting for the '>' prompt")
                if p.final is not None:
                    raise AtError(p.command, p.final)     # refused before the prompt
                self._write(pdu.hex.encode("ascii") + CTRL_Z)
                written = True
                return self._finish(p, send_timeout), True
            except ModemError as exc:
                exc.written = written      # type: ignore[attr-defined]
                raise
            finally:
                self._pending = None


def _open_error(path: str, exc: Exception) -> str:
    err = getattr(exc, "errno", None)
    text = str(exc)
    if err == errno.EACCES or "Permission denied" in text:
        return (f"port {path}: permission denied: add the gatewayd user to the 'dialout' group "
                f"(or check the udev rule)")
    if err == errno.EBUSY or "lock" in text.lower() or "busy" in text.lower():
        return f"port {path} is in use by another program (ModemManager? another gatewayd?): stop it"
    if err == errno.ENOENT:
        return f"port {path} does not exist: is the modem plugged in? see dmesg"
    return f"port {path} cannot be opened: {text}"


# ====================================================================== modem conversation

# 3GPP TS 27.005 3.2.5 / TS 24.011 E.2: what a +CMS ERROR means for this message.
CMS_PERMANENT = {1: "unassigned number", 8: "operator determined barring", 10: "call barred",
                 21: "short message transfer rejected", 27: "destination out of service",
                 28: "unidentified subscriber", 29: "facility rejected", 30: "unknown subscriber",
                 50: "requested facility not subscribed", 69: "requested facility not implemented",
                 81: "invalid short message reference", 95: "invalid message", 96: "invalid mandatory information",
                 97: "message type not implemented", 99: "information element not implemented",
                 304: "invalid PDU mode parameter", 305: "invalid text mode parameter"}
CMS_TEMPORARY = {38: "network out of order", 41: "temporary failure", 42: "congestion",
                 47: "resources unavailable", 98: "message not compatible with protocol state",
                 111: "protocol error", 127: "interworking error", 330: "SMSC address unknown",
                 331: "no network service", 332: "network timeout", 500: "unknown error"}
CMS_DEVICE = {300: "ME failure", 301: "SMS service of ME reserved", 302: "operation not allowed",
              303: "operation not supported", 310: "SIM not inserted", 311: "SIM PIN required",
              312: "PH-SIM PIN required", 313: "SIM failure", 314: "SIM busy", 315: "SIM wrong",
              316: "SIM PUK required", 317: "SIM PIN2 required", 318: "SIM PUK2 required",
              320: "memory failure", 322: "memory full", 340: "no +CNMA acknowledgement expected"}


def classify_cms(code: int | None) -> tuple[OutcomeKind, str]:
    """+CMS ERROR code -> (RETRY | FAILED | DEVICE_DOWN, words)."""
    if code is None:
        return OutcomeKind.RETRY, "modem answered ERROR without a reason"
    if code in CMS_PERMANENT:
        return OutcomeKind.FAILED, f"+CMS ERROR {code}: {CMS_PERMANENT[code]}"
    if code in CMS_DEVICE:
        return OutcomeKind.DEVICE_DOWN, f"+CMS ERROR {code}: {CMS_DEVICE[code]}"
    return OutcomeKind.RETRY, f"+CMS ERROR {code}: {CMS_TEMPORARY.get(code, 'unknown, treated as temporary')}"


# AT+CMMS=1 lasts while sends follow each other within the modem's link timer,
# which 27.005 puts at 1-5 s: after a pause longer than the shortest, re-issue it.
CMMS1_IDLE = 1.0

# Send errors that blame the network, not the recipient or the modem (27.005 3.2.5, 27.007 9.2):
# only these, repeated, mark a modem down for the network; registration answers never do.
NETWORK_CMS = {38: "network out of order", 331: "no network service", 332: "network timeout"}
NETWORK_CME = {30: "no network service", 31: "network timeout", 32: "network not allowed, emergency calls only"}


@dataclass
class ModemStatus:
    manufacturer: str = ""
    model: str = ""
    sim: str = ""
    signal: int | None = None
    operator: str = ""
    registrations: dict[Domain, Registration] = field(default_factory=dict)   # the domains that answered

    @property
    def network(self) -> Verdict:
        return verdict(self.registrations, self.operator)

    @property
    def registered(self) -> bool | None:
        """True / False on clear evidence, None when the answers are unclear or contradictory."""
        return registered_flag(self.network)


class ModemSession:
    """One opened modem: start-up, status, send, read. Not thread-safe on its own."""

    def __init__(self, cfg: ModemConfig, on_urc: Callable[[tuple[str, ...]], None],
                 on_gone: Callable[[], None] | None = None):
        self.cfg = cfg
        self.port = AtPort(cfg.port, cfg.baudrate, on_urc, on_gone)
        self.status = ModemStatus()
        self.reports_enabled = False
        self.link_mode = 0                 # AT+CMMS in force: 2, 1, or 0 (refused / not set)
        self._last_send = float("-inf")    # monotonic time the last +CMGS was answered

    def at(self, cmd: str, timeout: float | None = None, expect: tuple[str, ...] = ()) -> list[str]:
        return self.port.command(cmd, self.cfg.command_timeout if timeout is None else timeout, expect)

    def try_at(self, cmd: str, expect: tuple[str, ...] = (), timeout: float | None = None) -> list[str] | None:
        """Optional command: None when refused (quirky modems refuse many)."""
        try:
            return self.at(cmd, timeout, expect)
        except AtError:
            return None

    def open(self) -> None:
        self.port.open()

    def close(self) -> None:
        self.port.close()

    def sync(self, attempts: int = 3) -> None:
        """Make sure something answers. Any final result counts: some modems answer a first bare AT with ERROR."""
        per_try = max(0.5, min(2.0, self.cfg.command_timeout))
        for _ in range(attempts):
            try:
                self.at("AT", per_try)
                return
            except AtError:
                return
            except AtTimeout:
                continue
        raise AtTimeout(f"modem on {self.cfg.port} does not answer AT (tried {attempts} times): wrong port "
                        f"(a modem often has several; try the others), wrong baudrate ({self.cfg.baudrate}), "
                        f"or the modem is hung (unplug it)")

    def basic_setup(self) -> None:
        self.sync()
        self.try_at("ATE0")               # echo off; answers are parsed either way
        self.try_at("AT+CMEE=1")          # numeric errors when the modem agrees; plain ERROR otherwise

    def identify(self) -> None:
        self.status.manufacturer = _first(self.try_at("AT+CGMI"))
        self.status.model = _first(self.try_at("AT+CGMM"))

    def unlock_sim(self, pin: str, pin_rejected: bool) -> None:
        """Enter PIN once if the SIM asks for it. SimError when a person must act."""
        state = self.sim_state()
        self.status.sim = state
        if state == "READY":
            return
        if state == "SIM PIN":
            if pin_rejected:
                raise SimError(f"SIM on {self.cfg.port} rejected the configured PIN earlier; not retried "
                               f"(that would lock the SIM): fix 'pin' in the config and restart gatewayd")
            if not pin:
                raise SimError(f"SIM on {self.cfg.port} needs a PIN: set pin = \"....\" for modem "
                               f"{self.cfg.name} in the config")
            try:
                self.at(f"AT+CPIN={pin}", max(self.cfg.command_timeout, 10.0))
            except AtError as exc:
                raise PinRejected(f"SIM on {self.cfg.port} rejected the configured PIN ({exc.final}); "
                                  f"not retried, as each wrong try brings the SIM closer to a PUK lock: "
                                  f"check 'pin' for modem {self.cfg.name}, then restart gatewayd") from None
            self._wait_sim_ready()
            self.status.sim = "READY"
            return
        if "PUK" in state:
            raise SimError(f"SIM on {self.cfg.port} is PUK-locked (too many wrong PINs): unlock it in a phone "
                           f"with the PUK code from the operator")
        raise SimError(f"SIM on {self.cfg.port} is not usable ({state}): check that a SIM is inserted")

    def sim_state(self) -> str:
        try:
            lines = self.at("AT+CPIN?", expect=("+CPIN:",))
        except AtError as exc:
            if exc.code in (10, 13) or exc.kind == "error":
                return "SIM not inserted or not readable" + (f" ({exc.final})" if exc.kind != "error" else "")
            return exc.final
        return _after(lines, "+CPIN:").strip() or "unknown"

    def _wait_sim_ready(self) -> None:
        # After the PIN the SIM needs a moment before SMS commands work.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.sim_state() == "READY":
                return
            time.sleep(0.5)

    def configure_sms(self, want_reports: bool) -> None:
        try:
            self.at("AT+CMGF=0")
        except AtError as exc:
            raise ModemError(f"modem on {self.cfg.port} refuses PDU mode (AT+CMGF=0 -> {exc.final}); "
                             f"gatewayd needs a modem with PDU mode") from None
        # New messages announced with +CMTI (stored, survives our restarts),
        # status reports routed to us as +CDS. Fall back if refused.
        ds = 1 if want_reports else 0
        for cnmi in (f"AT+CNMI=2,1,0,{ds},0", f"AT+CNMI=1,1,0,{ds},0", "AT+CNMI=2,1,0,0,0", "AT+CNMI=1,1,0,0,0"):
            if self.try_at(cnmi) is not None:
                self.reports_enabled = cnmi.endswith(f",{ds},0") and ds == 1
                break
        else:
            log.warning("modem %s refuses every AT+CNMI setting: replies arrive only on restart",
                        self.cfg.name)
        self.try_at('AT+CPMS="SM","SM","SM"', expect=("+CPMS:",))
        self.keep_link()

    def keep_link(self) -> None:
        """Ask the modem to keep the radio link up between messages (AT+CMMS, 27.005 3.5.6).

        Without it many modems set up and tear down the link for every +CMGS,
        which costs about as much as the send itself. Mode 2 keeps the link for
        a few seconds after each send, for good; mode 1 falls back to 0 after
        the first idle gap, so with a modem that only knows 1 it is re-issued
        before a send that follows a pause (see `send`). Refused: carry on
        without; the modem sends, only slower. The setting does not survive a
        modem reset, so every (re)connect asks again.
        """
        self.link_mode = 0
        for mode in (2, 1):
            if self.try_at(f"AT+CMMS={mode}") is not None:
                self.link_mode = mode
                self._last_send = time.monotonic()     # mode 1's clock starts now
                break
        log.debug("modem %s: AT+CMMS %s", self.cfg.name,
                  f"={self.link_mode}" if self.link_mode else "refused: the link is set up for each message")

    def watch_registration(self) -> None:
        """AT+CREG=2 / +CGREG=2 / +CEREG=2 (else =1) where accepted: registration changes then
        arrive as URCs, and some modems answer +CREG? sensibly only once this is set."""
        for domain in Domain:
            for n in (2, 1):
                if self.try_at(f"AT{domain.command}={n}") is not None:
                    break

    def refresh_status(self) -> ModemStatus:
        """+CSQ, +CREG?, +CGREG?, +CEREG?, +COPS? (each optional: modems refuse one or the other)."""
        csq = self.try_at("AT+CSQ", expect=("+CSQ:",))
        if csq is not None:
            m = re.search(r"(\d+)\s*,", _after(csq, "+CSQ:"))
            self.status.signal = int(m.group(1)) if m else None
        for domain in Domain:
            head = domain.command + ":"
            lines = self.try_at(f"AT{domain.command}?", expect=(head,))
            if lines is None:
                self.status.registrations.pop(domain, None)
            else:
                self.status.registrations[domain] = parse_registration(domain, _after(lines, head))
        cops = self.try_at("AT+COPS?", expect=("+COPS:",))
        if cops is not None:
            m = re.search(r'"([^"]*)"', _after(cops, "+COPS:"))
            self.status.operator = m.group(1) if m else ""
        return self.status

    def send(self, pdu: smslib.SubmitPdu) -> int | None:
        """Transmit one PDU; return TP-MR. Raises AtError/AtTimeout/PortGone with `.written`."""
        if self.link_mode == 1 and time.monotonic() - self._last_send > CMMS1_IDLE:
            # Mode 1 reverts to 0 once the modem's link timer (1-5 s) ran out: ask again.
            if self.try_at("AT+CMMS=1") is None:
                self.link_mode = 0
        try:
            lines, _ = self.port.send_pdu(pdu, self.cfg.command_timeout, self.cfg.send_timeout)
        finally:
            self._last_send = time.monotonic()
        m = re.search(r"(\d+)", _after(lines, "+CMGS:"))
        return int(m.group(1)) if m else None

    def read_message(self, index: int) -> str | None:
        """PDU of stored message INDEX, None when the slot is empty."""
        try:
            lines = self.at(f"AT+CMGR={index}", expect=("+CMGR:",))
        except AtError as exc:
            if exc.code == 321:
                return None
            raise
        for i, ln in enumerate(lines):
            if ln.startswith("+CMGR:") and i + 1 < len(lines):
                return lines[i + 1]
        return None

    def list_messages(self) -> list[tuple[int, str]]:
        """(index, PDU) of every stored message (AT+CMGL=4)."""
        lines = self.try_at("AT+CMGL=4", expect=("+CMGL:",)) or []
        out = []
        for i, ln in enumerate(lines):
            m = re.match(r"\+CMGL:\s*(\d+)", ln)
            if m and i + 1 < len(lines):
                out.append((int(m.group(1)), lines[i + 1]))
        return out

    def delete_message(self, index: int) -> None:
        self.try_at(f"AT+CMGD={index}")

    def reset(self) -> None:
        """Ask the modem to restart (AT+CFUN=1,1); do not wait for a sensible answer."""
        try:
            self.at("AT+CFUN=1,1", 2.0)
        except ModemError:
            pass


class PinRejected(SimError):
    """The SIM said no to the configured PIN. Never sent again by this process."""


def _first(lines: list[str] | None) -> str:
    return (lines or [""])[0].strip()


def _after(lines: list[str], prefix: str) -> str:
    for ln in lines:
        if ln.startswith(prefix):
            return ln[len(prefix):].strip()
    return ""


# ====================================================================== the channel

BACKOFF_START, BACKOFF_MAX = 0.5, 30.0
MAX_PARTIAL = 64          # incomplete long replies kept while waiting for their other parts
PART_PATIENCE = 600.0     # seconds a long reply waits for a missing part before it is stored as it is


class ModemChannel(SupervisedDevice):
    """One GSM modem as a dispatch channel. See the module docstring."""

    label = "modem"
    kind = ChannelKind.SMS
    capacity = 1

    def __init__(self, cfg: ModemConfig, sms: SmsConfig, poll_interval: float = 30.0,
                 network_hold: float = NETWORK_HOLD_START):
        self.cfg = cfg
        self.sms = sms
        self.name = cfg.name
        self.rate_per_minute = cfg.sms_per_minute
        # The longest one send may take: a +CMGS per part, each with its prompt.
        self.max_send_seconds = (cfg.send_timeout + cfg.command_timeout) * sms.max_segments
        self.poll_interval = poll_interval
        self._balance: dict[str, Any] = {}
        self._next_balance = 0.0
        self._init_supervision()
        self._session: ModemSession | None = None
        self._io = threading.RLock()            # one conversation with the modem at a time
        self._urcs: queue.Queue[tuple[str, ...]] = queue.Queue()
        self._wake = threading.Event()
        self._pin_rejected = False
        self._needs_reset = False
        self._concat_ref = random.randrange(256)
        # Parts of long replies, by (sender, reference): part number -> (SIM index, text). The
        # parts stay on the SIM until the whole text is stored.
        self._parts: dict[tuple[str, int], dict[int, tuple[int | None, str]]] = {}
        self._parts_since: dict[tuple[str, int], float] = {}
        # Down for the network (sends failed with network errors), not for the port:
        self._network = NetworkWatch(network_hold)

    # ------------------------------------------------------------ protocol

    def _open_wait(self) -> float:
        return max(5.0, self.cfg.command_timeout * 6)

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._supervisor is not None:
            self._supervisor.join(timeout=self.cfg.command_timeout + 5)
            self._supervisor = None
        with self._io:
            self._drop_session()

    def send(self, delivery: Delivery) -> Outcome:
        """Send DELIVERY as one or more SMS; never raises."""
        if self._health.state is not DeviceState.UP or self._session is None:
            return Outcome.device_down(f"modem {self.name} is down: {self._health.last_error or 'not connected'}")
        try:
            sms_plan = smslib.plan(delivery.text, self.sms.smart_encoding)
            if sms_plan.segments > self.sms.max_segments:
                return Outcome.failed(f"text needs {sms_plan.segments} SMS, more than max_segments = "
                                      f"{self.sms.max_segments}; shorten it")
            pdus = smslib.submit_pdus(delivery.number, sms_plan, self._next_ref(), self.cfg.smsc,
                                      self.cfg.delivery_reports)
        except smslib.SmsEncodingError as exc:
            return Outcome.failed(str(exc))
        if delivery.drill:
            return Outcome.sent(segments=len(pdus), detail="drill")
        with self._io:
            return self._transmit(delivery, pdus)

    # ------------------------------------------------------------ sending

    def _next_ref(self) -> int:
        self._concat_ref = (self._concat_ref + 1) % 256
        return self._concat_ref

    def _transmit(self, delivery: Delivery, pdus: list[smslib.SubmitPdu]) -> Outcome:
        session = self._session
        if session is None or self._health.state is not DeviceState.UP:
            return Outcome.device_down(f"modem {self.name} went down")
        mr = None
        for i, pdu in enumerate(pdus):
            try:
                mr = session.send(pdu)
            except AtError as exc:
                return self._refused(exc, i, len(pdus))
            except (AtTimeout, PortGone) as exc:
                maybe = bool(getattr(exc, "written", False)) or i > 0
                self._went_down(str(exc), reset=isinstance(exc, AtTimeout))
                return Outcome.device_down(f"modem {self.name}: {exc}" + (" (may have been sent)" if maybe else ""),
                                           maybe_sent=maybe)
        log.debug("modem %s: %d part(s) to %s, TP-MR %s", self.name, len(pdus), redact(delivery.number), mr)
        self._network.sent()
        return Outcome.sent(reference=mr, segments=len(pdus))

    def _refused(self, exc: AtError, index: int, total: int) -> Outcome:
        verdict, words = classify_cms(exc.code if exc.kind == "cms" else None)
        if exc.kind == "cme":
            verdict, words = OutcomeKind.RETRY, f"+CME ERROR {exc.code}"
        partial = f" after {index} of {total} parts went out" if index else ""
        network = None if exc.code is None else (NETWORK_CMS if exc.kind == "cms" else NETWORK_CME).get(exc.code)
        if network:
            return self._network_refused(f"{words.split(':')[0]}: {network}{partial}", index > 0)
        if exc.kind == "error" and self._unregistered():
            # A bare ERROR (the modem refused AT+CMEE) while no domain is registered: the
            # two pieces of evidence together blame the network.
            return self._network_refused(f"ERROR while not registered{partial}", index > 0)
        self._network.other_failure()
        if verdict is OutcomeKind.FAILED:
            return Outcome.failed(words + partial)
        if verdict is OutcomeKind.DEVICE_DOWN:
            self._went_down(words, reset=False)
            return Outcome.device_down(words + partial, maybe_sent=index > 0)
        # Parts already out: the whole text goes again, so the recipient may see them twice.
        return Outcome(OutcomeKind.RETRY, words + partial, maybe_sent=index > 0)

    def _unregistered(self) -> bool:
        session = self._session
        return session is not None and session.status.network is Verdict.NOT_REGISTERED

    def _network_refused(self, words: str, maybe_sent: bool) -> Outcome:
        """A send the network refused: retry it, or, after NETWORK_FAILURES_DOWN in a row, the modem
        is down for the network (its messages go to other devices) until the hold-off ends."""
        session = self._session
        st = session.status if session is not None else ModemStatus()
        if not self._network.network_failure(st.registered):
            return Outcome.retry(words)
        self._set_health(state=DeviceState.DOWN, registered=st.registered,
                         last_error=f"no network: {self._network.failures} sends in a row failed ({words}); "
                                    f"{summary(st.registrations)}; sending is tried again in "
                                    f"{self._network.hold:g} s")
        return Outcome.device_down(words, maybe_sent=maybe_sent)

    def _network_check(self) -> None:
        """While down for the network: follow registration, and let sends try again once the
        hold-off ended or a domain newly reports registered."""
        if not self._io.acquire(timeout=0.1):
            return
        try:
            session = self._session
            if session is None:
                return
            try:
                st = session.refresh_status()
            except (AtTimeout, PortGone) as exc:
                self._went_down(str(exc), reset=isinstance(exc, AtTimeout))
                return
            if not self._network.may_try_again(st.registered):
                self._set_health(signal=st.signal, registered=st.registered,
                                 detail={**self._detail(session), **self._balance})
                return
            self._network.try_again()
            self._set_health(state=DeviceState.UP, signal=st.signal, registered=st.registered, last_error="",
                             detail={**self._detail(session), **self._balance})
        finally:
            self._io.release()

    # ------------------------------------------------------------ state

    def _went_down(self, why: str, reset: bool) -> None:
        self._needs_reset = self._needs_reset or reset
        self._network.forget()              # a port problem: reconnect, whatever the network did
        self._set_health(state=DeviceState.DOWN, last_error=why)
        self._wake.set()

    def _on_gone(self) -> None:
        # Called from the reader thread: only flag it, the supervisor does the work.
        if self._health.state is DeviceState.UP:
            self._set_health(state=DeviceState.DOWN, last_error=f"port {self.cfg.port} vanished (USB unplugged?)")
        self._wake.set()

    def _drop_session(self) -> None:
        s, self._session = self._session, None
        if s is not None:
            s.close()

    # ------------------------------------------------------------ supervisor

    def _supervise(self) -> None:
        backoff = BACKOFF_START
        last_poll = time.monotonic()
        while not self._stop.is_set():
            if self._network.down and self._session is not None and not self._session.port.gone:
                self._handle_urcs(timeout=0.5)
                if time.monotonic() - last_poll >= min(self.poll_interval, 2.0):
                    last_poll = time.monotonic()
                    self._network_check()
                continue
            if self._health.state is not DeviceState.UP or self._session is None or self._session.port.gone:
                if self._connect():
                    backoff = BACKOFF_START
                    last_poll = time.monotonic()
                elif not self._pin_rejected:
                    self._stop.wait(backoff)
                    backoff = min(BACKOFF_MAX, backoff * 2)
                else:
                    self._stop.wait(5.0)     # a rejected PIN needs a person; nothing to retry
                continue
            self._handle_urcs(timeout=0.5)
            if time.monotonic() - last_poll >= self.poll_interval:
                last_poll = time.monotonic()
                self._poll()
                # A +CMTI can be lost (a reset, a modem that stores without telling): list the SIM.
                self._read_stored()

    def _connect(self) -> bool:
        """Open and set up the modem; on failure record why. True when UP."""
        with self._io:
            old = self._session
            if old is not None and self._needs_reset and not old.port.gone:
                log.warning("modem %s stopped answering: resetting it (AT+CFUN=1,1)", self.name)
                old.reset()
            self._needs_reset = False
            self._drop_session()
            session = ModemSession(self.cfg, self._urcs.put, self._on_gone)
            try:
                self._start_session(session)
            except PinRejected as exc:
                self._pin_rejected = True
                return self._failed_connect(session, str(exc))
            except ModemError as exc:
                return self._failed_connect(session, str(exc))
            except Exception as exc:     # a bug here must not kill the supervisor
                log.exception("modem %s: set-up failed", self.name)
                return self._failed_connect(session, f"internal error during set-up: {exc!r}")
            self._session = session
            self._network.forget()
            st = session.status
            self._set_health(state=DeviceState.UP, signal=st.signal, registered=st.registered, last_error="",
                             detail=self._detail(session))
        self._read_stored()
        self._first_try.set()
        return True

    def _failed_connect(self, session: ModemSession, why: str) -> bool:
        session.close()
        self._set_health(state=DeviceState.DOWN, last_error=why)
        self._first_try.set()
        return False

    def _start_session(self, session: ModemSession) -> None:
        session.open()
        try:
            session.basic_setup()
        except AtTimeout:
            session.reset()      # hung: ask for a restart, the next attempt will see
            raise
        session.identify()
        session.unlock_sim(self.cfg.pin, self._pin_rejected)
        session.configure_sms(self.cfg.delivery_reports)
        session.watch_registration()
        # Registration is evidence, not a gate: LTE sticks say "+CREG: 0,0" and send fine.
        # A modem that is really off the network shows it in its send results.
        session.refresh_status()

    @staticmethod
    def _detail(session: ModemSession) -> dict[str, Any]:
        st = session.status
        return {"manufacturer": st.manufacturer, "model": st.model, "operator": st.operator, "sim": st.sim,
                "network": st.network.value, "registration": per_domain(st.registrations),
                "keep_link": f"AT+CMMS={session.link_mode}" if session.link_mode else "no"}

    def _poll(self) -> None:
        """Signal, registration and (when configured) the prepaid balance; a modem that no
        longer answers is reset."""
        if not self._io.acquire(timeout=0.1):
            return        # busy sending: it answers, which is all a poll would tell
        try:
            session = self._session
            if session is None:
                return
            try:
                session.sync(attempts=2)
                st = session.refresh_status()
            except (AtTimeout, PortGone) as exc:
                self._went_down(str(exc), reset=isinstance(exc, AtTimeout))
                return
            self._ask_balance(session)
            self._set_health(signal=st.signal, registered=st.registered,
                             detail={**self._detail(session), **self._balance})
        finally:
            self._io.release()

    # ------------------------------------------------------------ prepaid balance (USSD)

    def _ask_balance(self, session: ModemSession) -> None:
        """Send the balance USSD when due; the answer comes back as a +CUSD line."""
        code = self.cfg.balance_ussd
        if not code or time.monotonic() < self._next_balance:
            return
        self._next_balance = time.monotonic() + self.cfg.balance_every_minutes * 60
        # The code was checked against [0-9*#] in the config: nothing can be injected here.
        if session.try_at(f'AT+CUSD=1,"{code}",15') is None:
            log.warning("modem %s: the modem refused the balance request %s", self.name, code)

    def _on_balance(self, line: str) -> None:
        answer = parse_cusd(line)
        if answer is None:
            return
        amount = balance_amount(answer)
        if amount is None:
            log.warning("modem %s: no amount in the balance answer", self.name)
            return
        self._balance = {"balance": amount, "out_of_credit": amount < self.cfg.balance_min}
        with self._health_lock:
            detail = {**self._health.detail, **self._balance}
        self._set_health(detail=detail)
        if self._balance["out_of_credit"]:
            log.error("modem %s: SIM balance %.2f is below %.2f: top it up", self.name, amount, self.cfg.balance_min)

    # ------------------------------------------------------------ unsolicited: reports and replies

    def _handle_urcs(self, timeout: float) -> None:
        try:
            urc = self._urcs.get(timeout=timeout)
        except queue.Empty:
            return
        while True:
            try:
                self._handle_urc(urc)
            except Exception:
                log.exception("modem %s: could not handle %r", self.name, urc)
            try:
                urc = self._urcs.get_nowait()
            except queue.Empty:
                return

    def _handle_urc(self, urc: tuple[str, ...]) -> None:
        head = urc[0]
        if head.startswith("+CDS:") and len(urc) > 1:
            self._status_report(urc[1])
        elif head.startswith(("+CMTI:", "+CDSI:")):
            # A reply (+CMTI) or a status report (+CDSI) stored on the SIM at this index.
            m = re.search(r",\s*(\d+)", head)
            if m:
                self._stored(int(m.group(1)))
        elif head.startswith("+CMT:") and len(urc) > 1:
            self._deliver(urc[1], None)
        elif head.startswith("+CUSD:"):
            self._on_balance(head)
        elif head.startswith(tuple(d.command + ":" for d in Domain)):
            self._registration_urc(head)
        elif head.startswith("^RSSI:"):
            m = re.search(r"(\d+)", head)
            if m:
                self._set_health(signal=int(m.group(1)))

    def _registration_urc(self, line: str) -> None:
        """'+CEREG: 1,"2F01",...' after AT+CxREG=1/2: the domain's state changed."""
        head, _, rest = line.partition(":")
        domain = next(d for d in Domain if d.command == head)
        session = self._session
        if session is None:
            return
        st = session.status
        st.registrations[domain] = parse_registration(domain, rest, urc=True)
        self._set_health(registered=st.registered, detail={**self._detail(session), **self._balance})
        self._network.registration(st.registered)   # newly registered: the supervisor tries now

    # Write-ahead: what is read from the SIM is handed to the sink, which commits it to the
    # database, and deleted only once the sink returned. A crash at any step leaves it on
    # the SIM (read again at the next listing) or in the database (stored once: its key).

    def _status_report(self, pdu_hex: str) -> bool:
        try:
            rep = smslib.decode_status_report(pdu_hex)
        except smslib.SmsEncodingError as exc:
            log.warning("modem %s: unreadable status report: %s", self.name, exc)
            return True       # nothing to keep it for
        return self._write_ahead(DeliveryReport(self.name, rep.reference, normalise(rep.recipient), rep.delivered,
                                                smslib.status_text(rep.status), rep.permanent))

    def _stored(self, index: int) -> None:
        with self._io:
            session = self._session
            if session is None:
                return     # still on the SIM: read at the next listing
            try:
                pdu = session.read_message(index)
            except ModemError as exc:
                log.warning("modem %s: could not read message %d: %s", self.name, index, exc)
                return
            if pdu is not None:
                self._take_stored(session, index, pdu)

    def _read_stored(self) -> None:
        """Everything on the SIM: what arrived while we were away, or whose +CMTI got lost."""
        with self._io:
            session = self._session
            if session is None:
                return
            try:
                stored = session.list_messages()
            except ModemError:
                return
            for index, pdu in stored:
                self._take_stored(session, index, pdu)
            self._flush_stale_parts(session)

    def _take_stored(self, session: "ModemSession", index: int, pdu: str) -> None:
        """Store the SIM's message INDEX (a reply or a status report) ahead, then delete it."""
        if smslib.is_status_report(pdu):
            done = [index] if self._status_report(pdu) else []
        else:
            done = self._deliver(pdu, index)
        for i in done:
            session.delete_message(i)

    def _deliver(self, pdu_hex: str, index: int | None) -> list[int]:
        """Store a reply (its parts assembled) ahead; the SIM indexes that may now be deleted."""
        try:
            msg = smslib.decode_deliver(pdu_hex)
        except smslib.SmsEncodingError as exc:
            log.warning("modem %s: unreadable incoming SMS dropped: %s", self.name, exc)
            return [] if index is None else [index]
        stamp = msg.timestamp.isoformat() if msg.timestamp else ""
        if msg.parts <= 1 or msg.concat_ref is None:
            event = InboundText(self.name, normalise(msg.sender), msg.text, key=_key(msg.sender, stamp, msg.text))
            return ([] if index is None else [index]) if self._write_ahead(event) else []
        group = (msg.sender, msg.concat_ref)
        if group not in self._parts and len(self._parts) >= MAX_PARTIAL:
            # A part that never comes must not grow memory forever: forget the oldest (its
            # parts stay on the SIM and come back at the next listing).
            oldest = next(iter(self._parts))
            self._parts.pop(oldest)
            self._parts_since.pop(oldest, None)
        got = self._parts.setdefault(group, {})
        self._parts_since.setdefault(group, time.monotonic())
        got[msg.part] = (index, msg.text)
        if len(got) < msg.parts:
            return []
        return self._store_parts(group, msg.parts, stamp if msg.part == 1 else "")

    def _store_parts(self, group: tuple[str, int], parts: int, stamp: str) -> list[int]:
        got = self._parts.pop(group)
        self._parts_since.pop(group, None)
        text = "".join(got[i][1] if i in got else "[...]" for i in range(1, parts + 1))
        event = InboundText(self.name, normalise(group[0]), text, key=_key(group[0], str(group[1]), text))
        if not self._write_ahead(event):
            return []
        return [i for i, _ in got.values() if i is not None]

    def _flush_stale_parts(self, session: "ModemSession") -> None:
        """A long reply whose missing part never came is stored as it is, marked, after PART_PATIENCE."""
        for group, since in list(self._parts_since.items()):
            if time.monotonic() - since >= PART_PATIENCE and group in self._parts:
                parts = max(self._parts[group]) if self._parts[group] else 1
                for i in self._store_parts(group, parts, ""):
                    session.delete_message(i)

    def _write_ahead(self, event: InboundText | DeliveryReport) -> bool:
        """Hand EVENT to the sink, which commits it; False when it could not (keep the SIM copy)."""
        if self._sink is None:
            return False
        try:
            self._sink(event)
            return True
        except Exception:
            log.exception("modem %s: could not store a received %s; it stays on the SIM", self.name,
                          type(event).__name__)
            return False


def _key(sender: str, stamp: str, text: str) -> str:
    """The same SMS read twice gets the same key (sender, network time stamp, text)."""
    return hashlib.sha256(f"{sender}|{stamp}|{text}".encode()).hexdigest()[:40]


# ====================================================================== doctor

def parse_cusd(line: str) -> str | None:
    """The text of '+CUSD: <m>,"<text>",<dcs>' (UCS-2 hex decoded), or None."""
    m = re.match(r'\+CUSD:\s*\d+\s*,\s*"([^"]*)"', line)
    if not m:
        return None
    text = m.group(1)
    if len(text) >= 4 and len(text) % 4 == 0 and re.fullmatch(r"[0-9A-Fa-f]+", text):
        try:
            return bytes.fromhex(text).decode("utf-16-be")
        except ValueError:
            pass
    return text


def balance_amount(text: str) -> float | None:
    """The first amount in an operator's balance answer: 'Uw saldo: EUR 3,50' -> 3.5."""
    m = re.search(r"(\d+(?:[.,]\d{1,2})?)", text)
    return float(m.group(1).replace(",", ".")) if m else None


def doctor(cfg: ModemConfig) -> list[Check]:
    """Probe one modem and say, line by line, what is fine and what to fix."""
    what = f"modem {cfg.name}"
    checks: list[Check] = []
    session = ModemSession(cfg, lambda urc: None)
    try:
        session.open()
    except PortGone as exc:
        return [Check(False, f"{what} port", str(exc))]
    checks.append(Check(True, f"{what} port", f"{cfg.port} opened at {cfg.baudrate} baud"))
    try:
        _doctor_steps(session, cfg, what, checks)
    except (AtTimeout, PortGone) as exc:
        checks.append(Check(False, f"{what} answers", str(exc)))
    finally:
        session.close()
    return checks


def _doctor_steps(session: ModemSession, cfg: ModemConfig, what: str, checks: list[Check]) -> None:
    session.basic_setup()
    checks.append(Check(True, f"{what} answers", "AT commands answered"))
    session.identify()
    st = session.status
    checks.append(Check(True, f"{what} model", f"{st.manufacturer or '?'} {st.model or '?'}".strip()))
    try:
        session.unlock_sim(cfg.pin, pin_rejected=False)
    except SimError as exc:
        extra = " Do not run doctor again before fixing it." if isinstance(exc, PinRejected) else ""
        checks.append(Check(False, f"{what} SIM", str(exc) + extra))
        return
    checks.append(Check(True, f"{what} SIM", "ready" + (" (PIN accepted)" if cfg.pin else "")))
    try:
        session.configure_sms(cfg.delivery_reports)
        checks.append(Check(True, f"{what} PDU mode", "AT+CMGF=0 accepted" +
                            ("" if session.reports_enabled or not cfg.delivery_reports
                             else "; the modem refuses routing status reports (+CDS): no delivery reports") +
                            (f"; radio link kept open between messages (AT+CMMS={session.link_mode})"
                             if session.link_mode else
                             "; AT+CMMS refused: the radio link is set up for every message (slower)")))
    except ModemError as exc:
        checks.append(Check(False, f"{what} PDU mode", str(exc)))
    session.watch_registration()
    st = session.refresh_status()
    checks.append(_signal_check(what, st.signal))
    checks.append(_registration_check(what, st))


def _signal_check(what: str, rssi: int | None) -> Check:
    if rssi is None:
        return Check(False, f"{what} signal", "the modem does not report signal (AT+CSQ refused)")
    if rssi == 99:
        return Check(False, f"{what} signal", "no signal (+CSQ 99): check the antenna and coverage")
    dbm = -113 + 2 * rssi
    if rssi < 10:
        return Check(False, f"{what} signal", f"weak: {rssi}/31 ({dbm} dBm); move the modem or add an antenna")
    return Check(True, f"{what} signal", f"{rssi}/31 ({dbm} dBm)")


def _registration_check(what: str, st: ModemStatus) -> Check:
    """Registered on any domain is fine; unclear is fine too (sends decide); clear no is not."""
    domains = summary(st.registrations)
    v = st.network
    if v is Verdict.REGISTERED:
        return Check(True, f"{what} network", f"registered, operator {st.operator or '?'} ({domains})")
    if v is Verdict.UNCLEAR:
        return Check(True, f"{what} network", f"registration unclear ({domains}); gatewayd sends all the same "
                                              f"and lets the result decide")
    stats = {r.stat for r in st.registrations.values()}
    hint = ("the operator refuses the SIM: is it activated and not blocked?" if 3 in stats else
            "still searching: wait a minute, check the antenna and coverage" if 2 in stats else
            "check the antenna, coverage and that the SIM is activated")
    return Check(False, f"{what} network", f"not registered ({domains}): {hint}")
