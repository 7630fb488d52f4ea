"""An AT-command GSM modem on a pty, for tests and benchmarks.

The emulator owns the master side of a pty and publishes the slave side under
a stable symlink (e.g. /tmp/x/modem0 -> /dev/pts/7), which is what the
gatewayd config names as the port. It speaks a subset of 3GPP TS 27.007 /
27.005 in PDU mode and records every byte it receives (`wire_in`) and every
SMS it "transmits" (`sent`, decoded with python-gsmmodem-new's decoder, an
implementation independent of gatewayd.sms).

Profiles reproduce real modems' habits: `WELL_BEHAVED`, `SIM800` (slow
+CMGS, start-up chatter), `HUAWEI` (refuses AT+CMEE/AT+CLAC/AT+CVHU, first
bare AT answers ERROR, lists without parentheses, unsolicited lines in the
middle of responses), and the registration oddities of `REGISTRATION_PROFILES`:
`LTE_ONLY` (+CREG 0, +CEREG 1), `THREE_FIELD_CREG` ("+CREG: 1,0,1") and
`NEEDS_CREG2` ("unknown" until AT+CREG=2). A radio link latency model (`link_setup`, `link_hold`)
makes a +CMGS that finds the link down pay for setting it up, which AT+CMMS
1/2 avoids for sends that follow each other; `SentSms.link_setup` says which
sends paid. Faults are switched on from the test: `unplug()`,
`replug()`, `unplug_during_next_send()`, `fail_next_sends()`, `freeze()`,
`inject_sms()`, `status_report()` (also stored, +CDSI); `pause_at()` holds the conversation at
one command so a test can kill the daemon at that step.
"""
from __future__ import annotations

import os
import re
import select
import threading
import time
import tty
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone

from gsmmodem import pdu as libpdu

CTRL_Z, ESC = 0x1A, 0x1B
REG_COMMANDS = ("+CREG", "+CGREG", "+CEREG")
REGISTERED = (1, 5, 6, 7, 9, 10)     # 27.007 <stat> values that mean registered


@dataclass(frozen=True)
class Profile:
    name: str = "well-behaved"
    manufacturer: str = "Emulated"
    model: str = "EMU-1"
    cmgs_delay: float = 0.0              # seconds between Ctrl-Z and +CMGS
    refuse: tuple[str, ...] = ()         # commands answered with ERROR, e.g. ("+CMEE", "+CLAC")
    bare_at_errors: int = 0              # the first N bare "AT" answer ERROR
    lists_without_parens: bool = False   # +CSCS: "GSM","UCS2"
    chatter: tuple[str, ...] = ()        # unsolicited lines put inside responses, round robin
    chatter_every: int = 0               # 0: never; N: inside every Nth response
    boot_lines: tuple[str, ...] = ()     # printed when the port opens / after a reset
    pin: str = ""                        # the SIM's PIN; "" = no PIN required
    pin_attempts: int = 3
    sim_inserted: bool = True
    rssi: int = 21
    registration: int = 1                # +CREG stat: 1 home, 5 roaming, 2 searching, 0 not, 3 denied
    ps_registration: int | None = None   # +CGREG stat; None: as `registration`
    eps_registration: int | None = None  # +CEREG stat; None: as `registration`
    # How +CREG? is answered: "standard" (<n>,<stat>[,<lac>,<ci>,<AcT>]); "three-field"
    # (<stat>,<lac>,<ci> without <n>, as ofono-phonesim: "+CREG: 1,0,1"); "needs-n2"
    # ("+CREG: <n>,4", unknown, until AT+CREG=2 was set).
    creg_form: str = "standard"
    operator: str = "Proximus"
    prompt_chatter: str = ""              # an unsolicited line right after the '> ' prompt
    auto_status_reports: bool = False    # send +CDS "delivered" after each SMS that asks for one
    report_delay: float = 0.05
    # Radio link latency model (AT+CMMS, 27.005 3.5.6): a +CMGS first pays LINK_SETUP
    # seconds to bring the link up, unless it is still up from an earlier send. Without
    # AT+CMMS the link is torn down after every message; with AT+CMMS=1 or 2 it stays up
    # for LINK_HOLD seconds after each +CMGS answer. Mode 1 then falls back to 0, mode 2
    # stays. Refuse "+CMMS" (or "+CMMS=2") in `refuse` for modems without it.
    link_setup: float = 0.0
    link_hold: float = 3.0
    balance_text: str = ""               # answer to a balance USSD; "" = the modem refuses AT+CUSD
    imei: str = "356938035643809"        # AT+CGSN; two emulators with one IMEI are two ports of one modem
    iccid: str = "8932003101234567891"   # AT+CCID (SIM serial)
    imsi: str = "206011234567890"        # AT+CIMI
    slow: tuple[str, ...] = ()           # commands answered only after `slow_seconds` (a SIM still starting)
    slow_seconds: float = 0.0


WELL_BEHAVED = Profile()
SIM800 = Profile(name="sim800", manufacturer="SIMCOM_Ltd", model="SIMCOM_SIM800L", cmgs_delay=0.5, link_setup=1.0,
                 boot_lines=("RDY", "+CFUN: 1", "+CPIN: READY", "Call Ready", "SMS Ready"))
HUAWEI = Profile(name="huawei", manufacturer="huawei", model="E3131", refuse=("+CMEE", "+CLAC", "+CVHU"),
                 bare_at_errors=1, lists_without_parens=True,
                 chatter=("^RSSI: 17", "^MODE: 5,4", "^BOOT: 24787302,0,0,0,72", "^DSFLOWRPT: 1,2,3"),
                 chatter_every=2)
# An LTE-only stick (3G is off): circuit-switched "not registered", attached on LTE.
LTE_ONLY = Profile(name="lte-only", manufacturer="Quectel", model="EC25", registration=0, ps_registration=0,
                   eps_registration=1)
# Answers +CREG? as <stat>,<lac>,<ci> (ofono-phonesim's stock profile); no +CGREG/+CEREG.
THREE_FIELD_CREG = Profile(name="three-field-creg", manufacturer="oFono", model="Phonesim", creg_form="three-field",
                           refuse=("+CGREG", "+CEREG"))
# Says "unknown" to +CREG? until AT+CREG=2 was set; no +CGREG/+CEREG.
NEEDS_CREG2 = Profile(name="needs-creg2", manufacturer="ZTE", model="MF833", creg_form="needs-n2",
                      refuse=("+CGREG", "+CEREG"))
REGISTRATION_PROFILES = (LTE_ONLY, THREE_FIELD_CREG, NEEDS_CREG2)


@dataclass
class SentSms:
    """One SMS-SUBMIT part the emulator accepted (decoded by gsmmodem.pdu)."""

    number: str
    text: str
    mr: int
    concat_ref: int | None
    part: int
    parts: int
    status_report: bool
    pdu: str
    at: float = field(default_factory=time.monotonic)
    link_setup: bool = False             # this +CMGS had to bring the radio link up first


@dataclass
class Pause:
    """The conversation held at one command, so a test can kill the daemon at that step."""

    command: str                         # e.g. "+CMGD": matched against the start of the command
    after: bool                          # False: before answering it; True: right after the answer
    reached: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)

    def release(self) -> None:
        self.released.set()


class ModemEmulator:
    """A modem on a pty. `start()` it, give `port` to the code under test, `stop()` it."""

    def __init__(self, port: str, profile: Profile = WELL_BEHAVED):
        self.port = port
        self.profile = profile
        self.wire_in = bytearray()       # every byte received, all sessions
        self.wire_out = bytearray()      # every byte sent
        self.commands: list[str] = []    # every command line received
        self.sent: list[SentSms] = []
        self.sessions = 0                # how many times a pty was (re)created
        self._lock = threading.RLock()
        self._master: int | None = None
        self._slave: int | None = None
        self._running = False
        self._thread: threading.Thread | None = None
        self._buf = bytearray()
        self._prompt_len: int | None = None   # in +CMGS prompt: the announced TPDU length
        self._mr = 0
        self._storage: dict[int, str] = {}
        self._cms_queue: list[int | None] = []
        self._unplug_next_send = False
        self._replug_after: float | None = None
        self._frozen_until = 0.0
        self._freeze_reset_clears = False
        self._responses = 0
        self._chatter_i = 0
        self._link_until = 0.0           # monotonic time the radio link drops (0: down)
        self._pauses: list[Pause] = []
        self._reset_state()
        self._pin_attempts = profile.pin_attempts

    # ------------------------------------------------------------ lifecycle

    def start(self) -> "ModemEmulator":
        self._running = True
        self._plug()
        self._thread = threading.Thread(target=self._serve, name=f"emu-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._running = False
        if self._thread:
            self._thread.join(timeout=2)
        self._unplug_now()

    def __enter__(self) -> "ModemEmulator":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _plug(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)        # no echo or line editing by the kernel: the emulator decides
        tmp = f"{self.port}.tmp{os.getpid()}"
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(os.ttyname(slave), tmp)
        os.replace(tmp, self.port)
        with self._lock:
            self._master, self._slave = master, slave
            self._buf.clear()
            self._prompt_len = None
            self.sessions += 1
            self._reset_state()
        for line in self.profile.boot_lines:
            self._urc(line)

    def _unplug_now(self) -> None:
        with self._lock:
            for fd in (self._master, self._slave):
                if fd is not None:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            self._master = self._slave = None
        if os.path.lexists(self.port):
            os.unlink(self.port)

    def unplug(self) -> None:
        """The USB device vanishes: the pty closes and the port path disappears."""
        self._unplug_now()

    def replug(self) -> None:
        """The device comes back: a new pty at the same port path."""
        if self._master is None:
            self._plug()

    @property
    def plugged(self) -> bool:
        return self._master is not None

    # ------------------------------------------------------------ faults and events (test API)

    def fail_next_sends(self, *codes: int | None) -> None:
        """The next +CMGS commands answer +CMS ERROR with these codes, in order (None: succeeds, 0: ERROR)."""
        with self._lock:
            self._cms_queue.extend(codes)

    def unplug_during_next_send(self, replug_after: float | None = 1.0) -> None:
        """The next SMS is transmitted, then the port vanishes before +CMGS is answered."""
        with self._lock:
            self._unplug_next_send = True
            self._replug_after = replug_after

    def freeze(self, seconds: float, reset_clears: bool = True) -> None:
        """Stop answering for SECONDS (or until AT+CFUN=1,1 when RESET_CLEARS)."""
        with self._lock:
            self._frozen_until = time.monotonic() + seconds
            self._freeze_reset_clears = reset_clears

    def set_signal(self, rssi: int, registration: int | None = None) -> None:
        with self._lock:
            self.profile = replace(self.profile, rssi=rssi)
        if registration is not None:
            self.set_registration(cs=registration, ps=registration, eps=registration)

    def set_registration(self, cs: int | None = None, ps: int | None = None, eps: int | None = None) -> None:
        """Change the registration states; a domain whose URC mode is on (AT+CxREG=1/2) announces it."""
        with self._lock:
            before = {name: self._reg_stat(name) for name in REG_COMMANDS}
            p = self.profile
            self.profile = replace(p, registration=p.registration if cs is None else cs,
                                   ps_registration=self._reg_stat("+CGREG") if ps is None else ps,
                                   eps_registration=self._reg_stat("+CEREG") if eps is None else eps)
            changed = [name for name in REG_COMMANDS if self._reg_stat(name) != before[name]]
        for name in changed:
            n = self._reg_n[name]
            if n and not any(name.startswith(r) for r in self.profile.refuse):
                self._urc(f"{name}: {self._reg_fields(name, urc=True)}")

    def inject_sms(self, sender: str, text: str, notify: bool = True) -> int:
        """An SMS arrives: stored on the SIM, +CMTI announced (when CNMI asks for it). Returns its index."""
        parts = _deliver_pdus(sender, text)
        indexes = []
        with self._lock:
            for pdu in parts:
                idx = next(i for i in range(1, 256) if i not in self._storage)
                self._storage[idx] = pdu
                indexes.append(idx)
        if notify:
            for idx in indexes:
                self._urc(f'+CMTI: "SM",{idx}')
        return indexes[0]

    def status_report(self, mr: int, number: str, status: int = 0x00, stored: bool = False) -> None:
        """A status report for the message with TP-MR MR: sent as +CDS (PDU mode), or STORED on
        the SIM and announced with +CDSI, as modems routing reports to memory do (+CNMI ds=2)."""
        pdu = _status_report_pdu(mr, number, status)
        if not stored:
            self._urc(f"+CDS: {len(pdu) // 2 - 1}", pdu)
            return
        with self._lock:
            idx = next(i for i in range(1, 256) if i not in self._storage)
            self._storage[idx] = pdu
        self._urc(f'+CDSI: "SM",{idx}')

    def pause_at(self, command: str, after: bool = False) -> Pause:
        """Hold the conversation at the next COMMAND (e.g. "+CMGR", "+CMGD"), before answering it
        or AFTER answering it, until the test calls `release()`: kill -9 lands at that step."""
        p = Pause(command.upper(), after)
        with self._lock:
            self._pauses.append(p)
        return p

    def _hold(self, cmd: str, after: bool) -> None:
        with self._lock:
            p = next((p for p in self._pauses if p.after == after and cmd.startswith(p.command)), None)
            if p is not None:
                self._pauses.remove(p)
        if p is not None:
            p.reached.set()
            p.released.wait(60)

    @property
    def stored(self) -> dict[int, str]:
        return dict(self._storage)

    def messages(self) -> list[tuple[str, str]]:
        """(number, full text) per transmitted message, concatenated parts joined."""
        out, groups = [], {}
        for s in self.sent:
            if s.parts == 1:
                out.append((s.number, s.text))
                continue
            key = (s.number, s.concat_ref)
            groups.setdefault(key, {})[s.part] = s
            if len(groups[key]) == s.parts:
                got = groups.pop(key)
                out.append((s.number, "".join(got[i].text for i in range(1, s.parts + 1))))
        return out

    # ------------------------------------------------------------ I/O

    def _write(self, data: bytes) -> None:
        with self._lock:
            if self._master is None:
                return
            try:
                os.write(self._master, data)
                self.wire_out += data
            except OSError:
                pass

    def _urc(self, *lines: str) -> None:
        if self._master is None:
            return
        self._write(b"".join(b"\r\n" + ln.encode() + b"\r\n" for ln in lines))

    def _serve(self) -> None:
        while self._running:
            fd = self._master
            if fd is None:
                time.sleep(0.02)
                continue
            try:
                ready, _, _ = select.select([fd], [], [], 0.05)
                if not ready:
                    continue
                data = os.read(fd, 4096)
            except (OSError, ValueError):
                # EIO while nothing holds the slave open, or the fd was closed by unplug().
                time.sleep(0.01)
                continue
            with self._lock:
                self.wire_in += data
            self._feed(data)

    def _feed(self, data: bytes) -> None:
        for b in data:
            if self._master is None:
                return
            if self._frozen():
                self._frozen_byte(b)
                continue
            if self._prompt_len is not None:
                self._prompt_byte(b)
                continue
            if self._echo:
                self._write(bytes((b,)))
            if b in (0x0D, 0x0A):
                line = self._buf.decode("latin-1").strip()
                self._buf.clear()
                if line:
                    self._command(line)
            else:
                self._buf.append(b)

    def _frozen(self) -> bool:
        return time.monotonic() < self._frozen_until

    def _frozen_byte(self, b: int) -> None:
        # A frozen modem ignores everything except a full reset when that clears it.
        if b in (0x0D, 0x0A):
            line = self._buf.decode("latin-1").strip().upper()
            self._buf.clear()
            if line:
                self.commands.append(line)
            if self._freeze_reset_clears and line in ("AT+CFUN=1,1", "AT+CFUN=16"):
                self._frozen_until = 0.0
                self._reboot()
        else:
            self._buf.append(b)

    # ------------------------------------------------------------ commands

    def _reset_state(self) -> None:
        self._echo = True
        self._cmee = 0
        self._cmgf = 0
        self._cmms = 0
        self._link_until = 0.0
        self._cnmi = (0, 0, 0, 0, 0)
        self._reg_n = {name: 0 for name in REG_COMMANDS}    # AT+CxREG=<n>: URC mode per domain
        self._sim_ready = not self.profile.pin
        self._bare_at_errors = self.profile.bare_at_errors

    def _reboot(self) -> None:
        with self._lock:
            self._reset_state()
        threading.Timer(0.3, lambda: [self._urc(ln) for ln in self.profile.boot_lines]).start()
        self._ok()

    def _ok(self, *lines: str) -> None:
        self._respond(list(lines) + ["OK"])

    def _error(self, cme: int | None = None) -> None:
        if cme is not None and self._cmee:
            self._respond([f"+CME ERROR: {cme}"])
        else:
            self._respond(["ERROR"])

    def _respond(self, lines: list[str]) -> None:
        self._responses += 1
        p = self.profile
        if p.chatter and p.chatter_every and self._responses % p.chatter_every == 0:
            # An unsolicited line in the middle of the answer, as Huawei sticks do.
            noise = p.chatter[self._chatter_i % len(p.chatter)]
            self._chatter_i += 1
            lines = lines[:-1] + [noise] + lines[-1:] if len(lines) > 1 else [noise] + lines
        self._write(b"".join(b"\r\n" + ln.encode() + b"\r\n" for ln in lines))

    def _list(self, *items: str) -> str:
        body = ",".join(items)
        return body if self.profile.lists_without_parens else f"({body})"

    def _command(self, line: str) -> None:
        self.commands.append(line)
        up = line.upper()
        if not up.startswith("AT"):
            self._error()
            return
        cmd = up[2:]
        for prefix in self.profile.refuse:
            if cmd.startswith(prefix):
                self._error()
                return
        if cmd.startswith(self.profile.slow):
            self._sleep(self.profile.slow_seconds)
        handler = self._handlers().get(re.split(r"[=?]", cmd, maxsplit=1)[0])
        if handler is None:
            self._error()
            return
        self._hold(cmd, after=False)
        handler(cmd, line[2:])
        self._hold(cmd, after=True)

    def _handlers(self):
        return {
            "": self._at, "E0": self._echo_off, "E1": self._echo_on, "Z": self._atz, "&F": self._atz,
            "+CMEE": self._cmee_cmd, "+CLAC": lambda c, r: self._ok("AT+CMGS", "AT+CMGR", "AT+CSQ"),
            "+CVHU": lambda c, r: self._ok(), "+CPIN": self._cpin, "+CSQ": self._csq, "+CREG": self._reg,
            "+COPS": self._cops, "+CGMI": lambda c, r: self._ok(self.profile.manufacturer),
            "+CGMM": lambda c, r: self._ok(self.profile.model), "+CGSN": lambda c, r: self._ok(self.profile.imei),
            "+CGREG": self._reg, "+CEREG": self._reg,
            "+CIMI": self._sim_guard(lambda c, r: self._ok(self.profile.imsi)),
            "+CCID": self._ccid, "+CMGF": self._cmgf_cmd,
            "+CSCS": self._cscs, "+CNMI": self._cnmi_cmd, "+CPMS": self._sim_guard(self._cpms),
            "+CSMP": lambda c, r: self._ok(), "+CMMS": self._cmms_cmd, "+CSCA": self._csca,
            "+CFUN": self._cfun, "+CMGS": self._sim_guard(self._cmgs), "+CMGR": self._sim_guard(self._cmgr),
            "+CMGD": self._sim_guard(self._cmgd), "+CMGL": self._sim_guard(self._cmgl),
            "+CNMA": lambda c, r: self._ok(), "+CSMS": lambda c, r: self._ok("+CSMS: 1,1,1"),
            "+CUSD": self._cusd,
        }

    def _sim_guard(self, fn):
        def guarded(cmd, raw):
            if not self.profile.sim_inserted:
                self._cms_or_cme(310, 10)
            elif not self._sim_ready:
                self._cms_or_cme(311, 11)
            else:
                fn(cmd, raw)
        return guarded

    def _cms_or_cme(self, cms: int, cme: int) -> None:
        self._respond([f"+CMS ERROR: {cms}"] if self._cmee else ["ERROR"])

    def _at(self, cmd, raw):
        if self._bare_at_errors > 0:
            self._bare_at_errors -= 1
            self._error()
        else:
            self._ok()

    def _echo_off(self, cmd, raw):
        self._echo = False
        self._ok()

    def _echo_on(self, cmd, raw):
        self._echo = True
        self._ok()

    def _atz(self, cmd, raw):
        sim_ready = self._sim_ready
        self._reset_state()
        self._sim_ready = sim_ready       # ATZ resets settings, not the SIM
        self._bare_at_errors = 0
        self._ok()

    def _cmee_cmd(self, cmd, raw):
        if cmd.endswith("?"):
            self._ok(f"+CMEE: {self._cmee}")
        else:
            self._cmee = int(cmd.split("=")[1] or 0)
            self._ok()

    def _cpin(self, cmd, raw):
        if not self.profile.sim_inserted:
            self._error(10)
        elif cmd.endswith("?"):
            state = "READY" if self._sim_ready else ("SIM PUK" if self._pin_attempts <= 0 else "SIM PIN")
            self._ok(f"+CPIN: {state}")
        elif self._pin_attempts <= 0:
            self._error(12)
        else:
            given = raw.split("=", 1)[1].strip().strip('"')
            if given == self.profile.pin:
                self._sim_ready = True
                self._pin_attempts = self.profile.pin_attempts
                self._ok()
            else:
                self._pin_attempts -= 1
                self._error(16)

    def _ccid(self, cmd, raw):
        # The SIM's serial is readable before the PIN is entered, as on real SIMs.
        self._ok(f"+CCID: {self.profile.iccid}") if self.profile.sim_inserted else self._error(10)

    def _csq(self, cmd, raw):
        self._ok(f"+CSQ: {self.profile.rssi},99")

    def _reg_stat(self, name: str) -> int:
        p = self.profile
        stat = {"+CREG": p.registration, "+CGREG": p.ps_registration, "+CEREG": p.eps_registration}[name]
        return p.registration if stat is None else stat

    def _reg_fields(self, name: str, urc: bool = False) -> str:
        """What follows '+CxREG: ' in an answer (with <n>) or a URC (without)."""
        stat = self._reg_stat(name) if self._sim_ready else 0
        n = self._reg_n[name]
        form = self.profile.creg_form if name == "+CREG" else "standard"
        if form == "needs-n2" and n != 2:
            return f"{n},4"
        if form == "three-field":
            return f"{stat},0,1"
        where = ',"00C3","0010A5B1",7' if n == 2 and stat in REGISTERED else ""
        return f"{stat}{where}" if urc else f"{n},{stat}{where}"

    def _reg(self, cmd, raw):
        """AT+CREG / AT+CGREG / AT+CEREG: =? ranges, ? the state, =<n> the URC mode."""
        name = re.split(r"[=?]", cmd, maxsplit=1)[0]
        if cmd.endswith("=?"):
            self._ok(f"{name}: " + self._list("0-2"))
        elif cmd.endswith("?"):
            self._ok(f"{name}: {self._reg_fields(name)}")
        else:
            arg = cmd.split("=", 1)[1].strip() or "0"
            if arg not in ("0", "1", "2"):
                self._error(4)
                return
            self._reg_n[name] = int(arg)
            self._ok()

    def _cops(self, cmd, raw):
        registered = self._sim_ready and any(self._reg_stat(n) in REGISTERED for n in REG_COMMANDS)
        self._ok(f'+COPS: 0,0,"{self.profile.operator}"' if registered else "+COPS: 0")

    def _cmgf_cmd(self, cmd, raw):
        if cmd.endswith("?"):
            self._ok(f"+CMGF: {self._cmgf}")
        else:
            self._cmgf = int(cmd.split("=")[1])
            self._ok()

    def _cscs(self, cmd, raw):
        if cmd.endswith("=?"):
            self._ok("+CSCS: " + self._list('"IRA"', '"GSM"', '"UCS2"'))
        elif cmd.endswith("?"):
            self._ok('+CSCS: "GSM"')
        else:
            self._ok()

    def _cnmi_cmd(self, cmd, raw):
        if cmd.endswith("=?"):
            self._ok("+CNMI: " + ",".join(self._list(*v) for v in (("0", "1", "2"), ("0", "1"), ("0", "2"),
                                                                        ("0", "1", "2"), ("0", "1"))))
        elif cmd.endswith("?"):
            self._ok("+CNMI: " + ",".join(map(str, self._cnmi)))
        else:
            vals = [int(v) if v else 0 for v in cmd.split("=")[1].split(",")]
            self._cnmi = tuple((vals + [0] * 5)[:5])
            self._ok()

    def _cmms_cmd(self, cmd, raw):
        if cmd.endswith("=?"):
            self._ok("+CMMS: " + self._list("0-2"))
        elif cmd.endswith("?"):
            self._link_up()           # mode 1 may have fallen back to 0 meanwhile
            self._ok(f"+CMMS: {self._cmms}")
        else:
            arg = cmd.split("=", 1)[1].strip() or "0"
            if arg not in ("0", "1", "2"):
                self._error(4)
                return
            self._cmms = int(arg)
            if self._cmms == 0:
                self._link_until = 0.0
            self._ok()

    @property
    def link_mode(self) -> int:
        """The AT+CMMS mode in force now (the test API's view)."""
        with self._lock:
            self._link_up()
            return self._cmms

    def _link_up(self) -> bool:
        """Is the radio link still up from an earlier send? Mode 1 ends when that link drops."""
        if not self._link_until:
            return False
        if time.monotonic() <= self._link_until:
            return True
        self._link_until = 0.0
        if self._cmms == 1:
            self._cmms = 0
        return False

    def _cusd(self, cmd, raw):
        """AT+CUSD=1,"<code>",15: OK now, the network's answer later as +CUSD."""
        if not self.profile.balance_text or not cmd.startswith("+CUSD=1"):
            self._error()
            return
        self._ok()
        self._urc(f'+CUSD: 0,"{self.profile.balance_text}",15')

    def _cpms(self, cmd, raw):
        n = len(self._storage)
        if cmd.endswith("=?"):
            self._ok("+CPMS: " + ",".join(self._list('"SM"', '"ME"') for _ in range(3)))
        else:
            self._ok(f"+CPMS: {n},30,{n},30,{n},30")

    def _csca(self, cmd, raw):
        self._ok('+CSCA: "+32475161616",145') if cmd.endswith("?") else self._ok()

    def _cfun(self, cmd, raw):
        if cmd.endswith("?"):
            self._ok("+CFUN: 1")
        elif cmd in ("+CFUN=1,1", "+CFUN=16"):
            self._reboot()
        else:
            self._ok()

    def _cmgr(self, cmd, raw):
        idx = int(cmd.split("=")[1])
        pdu = self._storage.get(idx)
        if pdu is None:
            self._respond(["+CMS ERROR: 321"] if self._cmee else ["ERROR"])
        else:
            self._ok(f"+CMGR: 0,,{len(pdu) // 2 - 1}", pdu)

    def _cmgd(self, cmd, raw):
        args = cmd.split("=")[1].split(",")
        if len(args) > 1 and int(args[1]) > 0:
            self._storage.clear()
        else:
            self._storage.pop(int(args[0]), None)
        self._ok()

    def _cmgl(self, cmd, raw):
        lines = []
        for idx, pdu in sorted(self._storage.items()):
            lines += [f"+CMGL: {idx},0,,{len(pdu) // 2 - 1}", pdu]
        self._ok(*lines)

    # ------------------------------------------------------------ +CMGS in PDU mode

    def _cmgs(self, cmd, raw):
        if self._cmgf != 0:
            self._error()       # this emulator implements PDU mode only
            return
        self._prompt_len = int(cmd.split("=")[1])
        self._pdu = bytearray()
        self._write(b"\r\n> ")
        if self.profile.prompt_chatter:
            self._write(b"\r\n" + self.profile.prompt_chatter.encode() + b"\r\n")

    def _prompt_byte(self, b: int) -> None:
        if self._echo and b not in (CTRL_Z, ESC):
            self._write(bytes((b,)))
        if b == ESC:                         # cancel, as 27.005 says
            self._prompt_len = None
            self._ok()
            return
        if b != CTRL_Z:
            self._pdu.append(b)
            return
        length, self._prompt_len = self._prompt_len, None
        self._finish_send(self._pdu.decode("latin-1").strip(), length)

    def _finish_send(self, pdu_hex: str, length: int) -> None:
        try:
            decoded = libpdu.decodeSmsPdu(pdu_hex)
        except Exception:
            self._respond(["+CMS ERROR: 304"] if self._cmee else ["ERROR"])   # invalid PDU parameter
            return
        if decoded.get("type") != "SMS-SUBMIT" or decoded["tpdu_length"] != length:
            self._respond(["+CMS ERROR: 304"] if self._cmee else ["ERROR"])
            return
        setup = not self._link_up()
        if setup:
            self._sleep(self.profile.link_setup)
        code = self._cms_queue.pop(0) if self._cms_queue else None
        if code is not None:
            self._sleep(self.profile.cmgs_delay)
            self._respond([f"+CMS ERROR: {code}"] if self._cmee or code else ["ERROR"])
            self._link_sent()
            return
        self._mr = (self._mr + 1) % 256
        mr = self._mr
        first = int(pdu_hex[int(pdu_hex[:2], 16) * 2 + 2:][:2], 16)
        udh = (decoded.get("udh") or [None])[0]
        record = SentSms(decoded["number"], decoded["text"], mr, getattr(udh, "reference", None),
                         getattr(udh, "number", 1), getattr(udh, "parts", 1), bool(first & 0x20), pdu_hex,
                         link_setup=setup)
        with self._lock:
            self.sent.append(record)
        if self._unplug_next_send:
            self._unplug_mid_send()
            return
        self._sleep(self.profile.cmgs_delay)
        self._ok(f"+CMGS: {mr}")
        self._link_sent()
        if record.status_report and self.profile.auto_status_reports and self._cnmi[3] == 1:
            threading.Timer(self.profile.report_delay, self.status_report,
                            args=(mr, record.number, 0x00)).start()

    def _link_sent(self) -> None:
        """A +CMGS was answered: under AT+CMMS the link stays up a while, otherwise it drops."""
        self._link_until = time.monotonic() + self.profile.link_hold if self._cmms else 0.0

    def _unplug_mid_send(self) -> None:
        self._unplug_next_send = False
        self._unplug_now()
        if self._replug_after is not None:
            threading.Timer(self._replug_after, self.replug).start()

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


# ---------------------------------------------------------------- PDUs the network would send

def _deliver_pdus(sender: str, text: str) -> list[str]:
    """SMS-DELIVER PDUs (with an SMSC field) for TEXT from SENDER; concatenated when long."""
    try:
        septets = libpdu.encodeGsm7(text)
        ucs2 = "\x1b" in text
    except ValueError:
        ucs2 = True
    chunk = 67 if ucs2 else 153
    single = 70 if ucs2 else 160
    units = len(text) if ucs2 else len(septets)
    pieces = [text] if units <= single else [text[i:i + chunk] for i in range(0, len(text), chunk)]
    ref = (sum(map(ord, text)) + len(text)) % 256
    stamp = libpdu._encodeTimestamp(datetime.now(timezone.utc))
    out = []
    for i, piece in enumerate(pieces, start=1):
        udh = bytes((5, 0, 3, ref, len(pieces), i)) if len(pieces) > 1 else b""
        first = 0x04 | (0x40 if udh else 0)
        if ucs2:
            ud = udh + piece.encode("utf-16-be")
            udl, dcs = len(ud), 0x08
        else:
            sep = libpdu.encodeGsm7(piece)
            fill = (7 - (len(udh) * 8) % 7) % 7 if udh else 0
            udl = len(sep) + ((len(udh) * 8 + fill) // 7 if udh else 0)
            # The library's padBits is the header's bit count mod 7 (it packs as
            # if the septets continued the header), not the fill-bit count.
            ud = udh + libpdu.packSeptets(sep, padBits=(len(udh) * 8) % 7)
            dcs = 0x00
        tpdu = bytes((first,)) + libpdu._encodeAddressField(sender) + bytes((0, dcs)) + stamp + bytes((udl,)) + ud
        out.append(("07912374151616F6" + bytes(tpdu).hex()).upper())
    return out


def _status_report_pdu(mr: int, number: str, status: int) -> str:
    stamp = bytes(libpdu._encodeTimestamp(datetime.now(timezone.utc)))
    tpdu = bytes((0x06, mr)) + bytes(libpdu._encodeAddressField(number)) + stamp + stamp + bytes((status,))
    return ("00" + tpdu.hex()).upper()
