"""The real `gatewayd run` daemon (a subprocess) against emulated modems on ptys:
an alert goes out as SMS, +CDS marks it delivered, STOP opts out, and a modem
unplugged mid-campaign loses nothing and double-sends nothing unflagged."""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import replace

import pytest

from tests.emulators.modem import REGISTRATION_PROFILES, WELL_BEHAVED, ModemEmulator
from tests.fixtures.daemon import Gateway
from tests.fixtures.modem import emulators  # noqa: F401  (fixture)

pytestmark = pytest.mark.timeout(180)

# Every end-to-end path runs on each registration oddity too (issue 12).
PROFILES = pytest.mark.parametrize("profile", (WELL_BEHAVED, *REGISTRATION_PROFILES), ids=lambda p: p.name)

TEXT = "Inbraak gemeld in de Kerkstraat. Sluit deuren en ramen; bel 101 bij verdachte situaties."


def modem_toml(name: str, port: str) -> str:
    return (f'[[modems]]\nname = "{name}"\nport = "{port}"\nsms_per_minute = 600\n'
            f'command_timeout = 3.0\nsend_timeout = 10.0\n')



def gateway(tmp_path, emus: list[ModemEmulator], members: int) -> Gateway:
    g = Gateway(tmp_path, "".join(modem_toml(f"modem{i + 1}", e.port) for i, e in enumerate(emus)))
    g.cli("init-db")
    g.cli("network", "add", "N")
    lines = "\n".join(f"m{i},+32470{i:06d},sms,nl" for i in range(members))
    (tmp_path / "m.csv").write_text("name,phone,channel,lang\n" + lines + "\n")
    g.cli("member", "import", "--network", "N", str(tmp_path / "m.csv"))
    return g


def send_alert(g: Gateway, text: str = TEXT) -> int:
    return int(g.cli("alert", "send", "--network", "N", "--category", "urgent", "--text", text).stdout)


def done(g: Gateway, alert_id: int, states=("sent", "delivered")):
    counts = g.status(alert_id)["messages"]
    return counts if counts and set(counts) <= set(states) else None


@PROFILES
def test_alert_goes_out_as_sms(tmp_path, emulators, profile):
    emu = emulators("modem0", profile)
    g = gateway(tmp_path, [emu], 5)
    try:
        alert_id = send_alert(g)
        g.start()
        g.wait_for(lambda: done(g, alert_id))
        assert sorted(emu.messages()) == [(f"+32470{i:06d}", TEXT) for i in range(5)]
        # Byte-exact: the hex PDUs on the wire record are exactly the SMS the emulator decoded.
        wire = [b.decode() for b in re.findall(rb"AT\+CMGS=\d+\r([0-9A-F]*)\x1a", bytes(emu.wire_in))]
        assert wire == [s.pdu for s in emu.sent]
    finally:
        g.stop()


@PROFILES
def test_status_report_marks_the_message_delivered(tmp_path, emulators, profile):
    emu = emulators("modem0", profile)
    g = gateway(tmp_path, [emu], 3)
    try:
        alert_id = send_alert(g)
        g.start()
        g.wait_for(lambda: done(g, alert_id))
        for s in emu.sent:
            emu.status_report(s.mr, s.number, 0x00)
        g.wait_for(lambda: g.status(alert_id)["messages"] == {"delivered": 3})
    finally:
        g.stop()


@PROFILES
def test_stop_reply_opts_the_member_out_and_confirms(tmp_path, emulators, profile):
    emu = emulators("modem0", profile)
    g = gateway(tmp_path, [emu], 2)
    try:
        alert_id = send_alert(g)
        g.start()
        g.wait_for(lambda: done(g, alert_id))
        emu.inject_sms("+32470000001", "Stop")
        g.wait_for(lambda: g.rows("SELECT opted_out FROM member WHERE phone = ?", "+32470000001") == [(1,)])
        g.wait_for(lambda: any(n == "+32470000001" and "START" in t for n, t in emu.messages()))
        assert emu.stored == {}
    finally:
        g.stop()


def test_unplug_mid_campaign_loses_nothing_and_flags_any_double(tmp_path, emulators):
    slow = replace(WELL_BEHAVED, cmgs_delay=0.1)
    flaky, steady = emulators("modem0", slow), emulators("modem1", slow)
    g = gateway(tmp_path, [flaky, steady], 40)
    try:
        alert_id = send_alert(g)
        g.start()
        g.wait_for(lambda: len(flaky.sent) >= 3, every=0.01)
        flaky.unplug_during_next_send(replug_after=2.0)
        g.wait_for(lambda: done(g, alert_id), timeout=120)
        received = Counter(n for n, _ in flaky.messages() + steady.messages())
        assert set(received) == {f"+32470{i:06d}" for i in range(40)}
        twice = {n for n, c in received.items() if c > 1}
        flagged = {r[0] for r in g.rows("SELECT number FROM message WHERE possible_duplicate")}
        assert twice == flagged and len(flagged) == 1    # the one on the air when the port vanished
        assert flaky.sessions == 2          # it did vanish and come back
    finally:
        g.stop()


def test_cli_doctor_reports_the_modem(tmp_path, emulators):
    emu = emulators("modem0")
    g = gateway(tmp_path, [emu], 1)
    out = g.cli("doctor", check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "modem1 model: Emulated EMU-1" in out.stdout and "modem1 network: registered" in out.stdout


def test_cli_doctor_says_when_the_modem_is_missing(tmp_path, emulators):
    emu = emulators("modem0")
    g = gateway(tmp_path, [emu], 1)
    emu.unplug()
    out = g.cli("doctor", check=False)
    assert out.returncode == 1 and "is the modem plugged in? see dmesg" in out.stdout


def test_status_json_shows_each_registration_domain(tmp_path, emulators):
    import json

    from tests.emulators.modem import LTE_ONLY
    emu = emulators("modem0", LTE_ONLY)
    g = gateway(tmp_path, [emu], 1)
    try:
        g.start()
        devices = g.wait_for(lambda: [d for d in json.loads(g.cli("status", "--json").stdout)["devices"]
                                      if d["state"] == "up"])
        assert devices[0]["registered"] is True and devices[0]["detail"]["network"] == "registered"
        assert devices[0]["detail"]["registration"] == {
            "cs": "not registered, not searching", "ps": "not registered, not searching",
            "eps": "registered, home network"}
        text = g.cli("status").stdout
        assert ("modem1 (sms): up, signal 21, registered (CS not registered, not searching, "
                "PS not registered, not searching, EPS registered, home network)") in text
    finally:
        g.stop()
