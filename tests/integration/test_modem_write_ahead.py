"""Write-ahead for everything that comes in: the real daemon, an emulated modem on a pty,
and kill -9 at every step of reading a reply (the emulator holds the conversation at
that step). Whatever the step, the reply ends up in the database, once."""
from __future__ import annotations

import signal
import time

import pytest

from tests.fixtures.daemon import Gateway
from tests.fixtures.modem import emulators  # noqa: F401  (fixture)

pytestmark = pytest.mark.timeout(600)

MEMBER = "+32470000001"
# Where the daemon is killed: (command the emulator holds, held after answering it?).
STEPS = [("+CMGR", False),    # the +CMTI arrived, the read is asked for
         ("+CMGR", True),     # the reply was read, not yet stored
         ("+CMGD", False),    # the delete is asked for
         ("+CMGD", True),     # the SIM copy is gone
         (None, None)]        # right after the +CMTI, before anything
RUNS = 20



def gateway(tmp_path, port: str) -> Gateway:
    g = Gateway(tmp_path, f'[[modems]]\nname = "modem1"\nport = "{port}"\nsms_per_minute = 600\n'
                          f'command_timeout = 3.0\nsend_timeout = 10.0\n')
    g.cli("init-db")
    g.cli("network", "add", "N")
    g.cli("member", "add", "--network", "N", "--phone", MEMBER)
    return g


def wait_modem_set_up(g: Gateway, emu, since: int) -> None:
    """The daemon (re)started and configured the modem: it asked for +CNMI after SINCE commands."""
    g.wait_for(lambda: any(c.upper().startswith("AT+CNMI=") for c in emu.commands[since:]), timeout=60,
               every=0.05)


def test_kill_9_at_every_step_never_loses_a_reply(tmp_path, emulators):
    emu = emulators("modem0")
    g = gateway(tmp_path, emu.port)
    texts = [f"Melding {i}: verdacht voertuig" for i in range(RUNS)]
    try:
        for i, text in enumerate(texts):
            mark = len(emu.commands)
            g.start()
            wait_modem_set_up(g, emu, mark)
            command, after = STEPS[i % len(STEPS)]
            pause = emu.pause_at(command, after) if command else None
            emu.inject_sms(MEMBER, text)
            if pause is not None:
                assert pause.reached.wait(30), f"run {i}: the daemon never reached {command}"
            g.kill(signal.SIGKILL)
            if pause is not None:
                pause.release()
        mark = len(emu.commands)
        g.start()                     # the last start: it must find whatever was left
        wait_modem_set_up(g, emu, mark)
        g.wait_for(lambda: len(g.rows("SELECT text FROM inbound_message")) >= RUNS and not emu.stored,
                   timeout=120)
        time.sleep(1.0)               # anything filed twice would show up by now
        filed = [t for (t,) in g.rows("SELECT text FROM inbound_message ORDER BY id")]
        assert sorted(filed) == sorted(texts)            # every reply, each once
        assert emu.stored == {}                          # and nothing left on the SIM
    finally:
        g.stop()


def test_stop_survives_kill_9_after_the_delete(tmp_path, emulators):
    """The review's case: STOP read and deleted from the SIM, the daemon killed at once."""
    emu = emulators("modem0")
    g = gateway(tmp_path, emu.port)
    try:
        g.start()
        wait_modem_set_up(g, emu, 0)
        pause = emu.pause_at("+CMGD", after=True)
        emu.inject_sms(MEMBER, "STOP")
        assert pause.reached.wait(30)
        g.kill(signal.SIGKILL)
        pause.release()
        mark = len(emu.commands)
        g.start()
        wait_modem_set_up(g, emu, mark)
        g.wait_for(lambda: g.rows("SELECT opted_out FROM member WHERE phone = ?", MEMBER) == [(1,)], timeout=60)
        g.wait_for(lambda: any(n == MEMBER and "START" in t for n, t in emu.messages()), timeout=60)
    finally:
        g.stop()


def test_a_status_report_stored_on_the_sim_is_read_and_applied(tmp_path, emulators):
    """+CDSI: a modem that stores status reports announces the index; it is read, applied, deleted."""
    emu = emulators("modem0")
    g = gateway(tmp_path, emu.port)
    try:
        alert_id = int(g.cli("alert", "send", "--network", "N", "--category", "urgent", "--text", "x").stdout)
        g.start()
        g.wait_for(lambda: g.status(alert_id)["messages"] == {"sent": 1})
        s = emu.sent[0]
        emu.status_report(s.mr, s.number, 0x00, stored=True)
        g.wait_for(lambda: g.status(alert_id)["messages"] == {"delivered": 1}, timeout=60)
        g.wait_for(lambda: emu.stored == {}, timeout=30)
    finally:
        g.stop()


def test_a_reply_whose_cmti_was_lost_is_found_by_the_periodic_listing(tmp_path, emulators):
    emu = emulators("modem0")
    g = gateway(tmp_path, emu.port)
    try:
        g.start()
        wait_modem_set_up(g, emu, 0)
        emu.inject_sms(MEMBER, "Melding zonder aankondiging", notify=False)     # stored, no +CMTI
        g.wait_for(lambda: g.rows("SELECT text FROM inbound_message") == [("Melding zonder aankondiging",)],
                   timeout=90)
        assert emu.stored == {}
    finally:
        g.stop()
