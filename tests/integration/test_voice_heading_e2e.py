"""Who and when first through the real `gatewayd run`: the call Asterisk played starts with the
sender and the time as spoken Dutch, the SMS with them as written (issue 15)."""
from __future__ import annotations

import json
import sqlite3
from datetime import datetime

import pytest

from gatewayd.heading import with_heading
from gatewayd.tts import VOICES, audio_name
from tests.fixtures.asterisk import AsteriskRig, asterisk_rig, daemon_toml  # noqa: F401 (fixture)
from tests.fixtures.daemon import Gateway

pytestmark = [pytest.mark.asterisk, pytest.mark.timeout(180)]

VOICE_MEMBER, SMS_MEMBER = "+32470000021", "+32470000022"   # the first answers and presses 1
ZONE, TZ = "Politie zone Noord", "Europe/Brussels"


def test_call_and_sms_start_with_sender_and_time(tmp_path, asterisk_rig: AsteriskRig):
    rig = asterisk_rig
    devices = (daemon_toml(rig, tmp_path / "audio", max_calls=1, amd=False) +
               '[[emulated]]\nname = "sim"\nkind = "sms"\nlatency = 0.0\n\n')
    g = Gateway(tmp_path, devices, extra_toml=f'sender_first = true\ntimezone = "{TZ}"\n')
    g.cli("init-db")
    g.cli("network", "add", "N", "--zone", ZONE)
    g.cli("member", "add", "--network", "N", "--phone", VOICE_MEMBER, "--channel", "voice")
    g.cli("member", "add", "--network", "N", "--phone", SMS_MEMBER, "--channel", "sms")
    try:
        alert_id = int(g.cli("alert", "send", "--network", "N", "--category", "urgent", "--text", "Hallo.").stdout)
        g.start()
        def done():
            r = json.loads(g.cli("alert", "report", str(alert_id), "--json").stdout)
            return r if {x["state"] for x in r["recipients"]} <= {"acknowledged", "delivered"} else None
        report = g.wait_for(done, timeout=120, every=1.0)
    finally:
        g.stop()
    written = datetime.fromisoformat(report["created_at"])
    spoken = with_heading("Hallo.", ZONE, written, "nl", TZ, spoken=True)
    # The main audio Asterisk played is the rendering of exactly this text (header first).
    assert (tmp_path / "audio" / audio_name(f"Test. {spoken}", VOICES["nl"], 150)).exists()
    sms = sqlite3.connect(g.db).execute("SELECT text FROM message WHERE channel = 'sms'").fetchone()[0]
    assert sms == with_heading("Hallo.", ZONE, written, "nl", TZ, spoken=False)
    assert sms.startswith(f"{ZONE} ") and spoken.startswith(f"{ZONE}, ") and " uur" in spoken
