"""The real `gatewayd run` daemon with an [asterisk] section against the real Asterisk.

Members on voice get a call that reads the alert; the test callees press 1.
Asterisk is killed and started again in the middle of a campaign: every
message still ends in a final state, none is lost.
"""
from __future__ import annotations

import sqlite3
import time

import pytest

from tests.fixtures.asterisk import AsteriskRig, asterisk_rig, daemon_toml, member  # noqa: F401 (fixture)
from tests.fixtures.daemon import Gateway

pytestmark = [pytest.mark.asterisk, pytest.mark.timeout(240)]

FINAL = {"delivered", "acknowledged", "failed"}
SHORT = "Inbraak in de Kerkstraat."
LONG = "Inbraak gemeld in de Kerkstraat. Sluit deuren en ramen en bel honderd en een bij verdachte situaties."


def voice_gateway(tmp_path, rig: AsteriskRig, members: int, max_calls: int) -> Gateway:
    asterisk = daemon_toml(rig, tmp_path / "audio", max_calls=max_calls, amd=False)
    g = Gateway(tmp_path, asterisk)
    g.cli("init-db")
    g.cli("network", "add", "N")
    for i in range(members):
        g.cli("member", "add", "--network", "N", "--phone", member(i), "--channel", "voice", "--lang", "nl")
    return g


def send_alert(g: Gateway, text: str) -> int:
    return int(g.cli("alert", "send", "--network", "N", "--category", "urgent", "--text", text,
                     "--channel", "voice").stdout)


def finished(g: Gateway, alert_id: int):
    counts = g.status(alert_id)["messages"]
    return counts if counts and set(counts) <= FINAL else None


def test_voice_alert_is_acknowledged_by_every_member(tmp_path, asterisk_rig):
    g = voice_gateway(tmp_path, asterisk_rig, members=3, max_calls=3)
    try:
        alert_id = send_alert(g, SHORT)
        g.start()
        counts = g.wait_for(lambda: finished(g, alert_id), timeout=120, every=0.5)
    finally:
        g.stop()
    assert counts == {"acknowledged": 3}


@pytest.fixture(scope="module")
def restarted_campaign(tmp_path_factory, asterisk_rig):
    """Six members, two calls at a time; Asterisk killed while the first two play, then started again."""
    tmp = tmp_path_factory.mktemp("restart")
    g = voice_gateway(tmp, asterisk_rig, members=6, max_calls=2)
    try:
        alert_id = send_alert(g, LONG)
        g.start()
        # Both calls up in Asterisk (two Local channels each), then into the long message.
        g.wait_for(lambda: asterisk_rig.active_channels() >= 4, timeout=60, every=0.2)
        time.sleep(1.0)
        asterisk_rig.kill()
        time.sleep(1.0)
        asterisk_rig.start()
        counts = g.wait_for(lambda: finished(g, alert_id), timeout=180, every=0.5)
    finally:
        g.stop()
        asterisk_rig.start()   # later tests need it whatever happened here
    con = sqlite3.connect(g.db)
    flagged = con.execute("SELECT COUNT(*) FROM message WHERE possible_duplicate").fetchone()[0]
    con.close()
    return {"counts": counts, "flagged": flagged}


def test_restart_mid_campaign_loses_no_message(restarted_campaign):
    assert sum(restarted_campaign["counts"].values()) == 6


def test_restart_mid_campaign_leaves_every_message_final(restarted_campaign):
    assert set(restarted_campaign["counts"]) <= FINAL


def test_calls_cut_by_the_restart_are_flagged_possible_duplicates(restarted_campaign):
    assert restarted_campaign["flagged"] == 2
