"""Calls that reach people, through the real `gatewayd run` and the real Asterisk.

One urgent voice alert to four members, each played by a callee of the test
dialplan: a person who says "hallo?", an answering machine (long greeting,
beep), a number that does not answer the first call and answers the second,
and a person who presses 0 (repeat) and then 1. Outcomes are read back with
`gatewayd alert report --json`.
"""
from __future__ import annotations

import json
import sqlite3

import pytest

from tests.fixtures.asterisk import HUMAN, MACHINE, REPEAT_THEN_CONFIRM, AsteriskRig, asterisk_rig, daemon_toml, second  # noqa: F401
from tests.fixtures.daemon import Gateway

pytestmark = [pytest.mark.asterisk, pytest.mark.timeout(300)]

FINAL = {"delivered", "acknowledged", "voicemail", "failed"}
BACKOFF = 600.0       # the normal backoff: far longer than the test, so only the quick re-call can re-call
QUICK_RECALL = 2.0
VOICEMAIL_RECALL_MIN = 0.05   # 3 s


def reach_gateway(tmp_path, rig: AsteriskRig, numbers: list[str]) -> Gateway:
    asterisk = daemon_toml(rig, tmp_path / "audio", max_calls=4, confirm_wait=4.0, amd=True,
                           quick_recall_seconds=QUICK_RECALL, callback_number="+3211000000")
    g = Gateway(tmp_path, asterisk, extra_toml=f"voicemail_recall_minutes_urgent = {VOICEMAIL_RECALL_MIN}\n",
                backoff_base=BACKOFF)
    g.cli("init-db")
    g.cli("network", "add", "N")
    for number in numbers:
        g.cli("member", "add", "--network", "N", "--phone", number, "--channel", "voice", "--lang", "nl")
    return g


def report(g: Gateway, alert_id: int) -> dict:
    return json.loads(g.cli("alert", "report", str(alert_id), "--json").stdout)


@pytest.fixture(scope="module")
def campaign(tmp_path_factory, asterisk_rig):
    tmp = tmp_path_factory.mktemp("reach")
    numbers = [HUMAN, MACHINE, second(1), REPEAT_THEN_CONFIRM]
    g = reach_gateway(tmp, asterisk_rig, numbers)
    try:
        alert_id = int(g.cli("alert", "send", "--network", "N", "--category", "urgent", "--text", "Hallo.",
                             "--channel", "voice").stdout)
        g.start()
        g.wait_for(lambda: set(g.status(alert_id)["messages"]) <= FINAL, timeout=240, every=0.5)
        rep = report(g, alert_id)
        status = g.status(alert_id)
    finally:
        g.stop()
    con = sqlite3.connect(g.db)
    results = dict(con.execute("SELECT message.number, group_concat(attempt.result, ',') FROM attempt "
                               "JOIN message ON message.id = attempt.message_id GROUP BY message.number").fetchall())
    keys = con.execute("SELECT number, handled_by FROM inbound_message").fetchall()
    con.close()
    return {"report": {r["number"]: r for r in rep["recipients"]}, "status": status, "attempts": results,
            "keys": keys}


def test_person_gets_the_message(campaign):
    assert campaign["report"][HUMAN]["state"] == "delivered"


def test_machine_is_voicemail_not_delivered(campaign):
    assert campaign["report"][MACHINE]["state"] == "voicemail"


def test_machine_is_called_again_once_after_the_voicemail(campaign):
    assert campaign["attempts"][MACHINE] == "voicemail,voicemail"


def test_status_counts_voicemail_apart_from_delivered(campaign):
    assert campaign["status"]["messages"] == {"delivered": 1, "voicemail": 1, "acknowledged": 2}


def test_unanswered_first_call_is_re_called_quickly_not_after_the_backoff(campaign):
    row = campaign["report"][second(1)]
    assert (row["state"], row["attempts"]) == ("acknowledged", 2)
    assert campaign["attempts"][second(1)] == "retry,acknowledged"


def test_repeat_then_confirm_is_acknowledged(campaign):
    assert campaign["report"][REPEAT_THEN_CONFIRM]["state"] == "acknowledged"


def test_key_1_is_written_as_it_is_pressed(campaign):
    assert (REPEAT_THEN_CONFIRM, "alert call key") in campaign["keys"]
