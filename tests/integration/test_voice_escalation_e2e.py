"""Escalation through the real `gatewayd run`: an SMS not delivered in time becomes a real call
(the real Asterisk; the callee presses 1), a call not acknowledged becomes an SMS.

The SMS device is an emulated one that fails every send (a SIM without credit, say).
"""
from __future__ import annotations

import json

import pytest

from tests.fixtures.asterisk import AsteriskRig, asterisk_rig, daemon_toml  # noqa: F401 (fixture)
from tests.fixtures.daemon import Gateway

pytestmark = [pytest.mark.asterisk, pytest.mark.timeout(240)]

SMS_MEMBER = "+32470000011"     # a mobile: its SMS never arrives; called, it answers and presses 1
VOICE_MEMBER = "+32479000012"   # a mobile on voice: always busy
FINAL = {"delivered", "acknowledged", "voicemail", "failed", "sent"}


@pytest.fixture(scope="module")
def escalated(tmp_path_factory, asterisk_rig: AsteriskRig):
    tmp = tmp_path_factory.mktemp("escalation")
    rig = asterisk_rig
    devices = (daemon_toml(rig, tmp / "audio", confirm_wait=2.0) +
               '[[emulated]]\nname = "sim"\nkind = "sms"\nlatency = 0.0\nfailure_rate = 1.0\n\n')
    g = Gateway(tmp, devices, extra_toml="escalate_after_minutes_urgent = 0.05\n", backoff_base=0.5)
    g.cli("init-db")
    g.cli("network", "add", "N")
    g.cli("member", "add", "--network", "N", "--phone", SMS_MEMBER, "--channel", "sms")
    g.cli("member", "add", "--network", "N", "--phone", VOICE_MEMBER, "--channel", "voice")
    try:
        alert_id = int(g.cli("alert", "send", "--network", "N", "--category", "urgent", "--text", "Inbraak.").stdout)
        g.start()

        def done():
            rep = json.loads(g.cli("alert", "report", str(alert_id), "--json").stdout)
            return rep if len(rep["recipients"]) == 4 and {r["state"] for r in rep["recipients"]} <= FINAL else None
        rep = g.wait_for(done, timeout=180, every=1.0)
    finally:
        g.stop()
    return {(r["number"], r["channel"]): r for r in rep["recipients"]}


def test_undelivered_sms_escalates_to_a_call_that_is_acknowledged(escalated):
    call = escalated[(SMS_MEMBER, "voice")]
    assert (call["escalated"], call["state"]) == (True, "acknowledged")
    assert escalated[(SMS_MEMBER, "sms")]["escalated"] is False


def test_unacknowledged_call_escalates_to_an_sms(escalated):
    assert escalated[(VOICE_MEMBER, "sms")]["escalated"] is True
    assert escalated[(VOICE_MEMBER, "voice")]["escalated"] is False
