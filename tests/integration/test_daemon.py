"""The real daemon in a subprocess: kill -9 mid-dispatch, SIGTERM, restart; nothing lost."""
from __future__ import annotations

import signal
import time

import pytest

from tests.fixtures.daemon import Gateway

SLOW_SIM = '[[emulated]]\nname = "sim1"\nlatency = 0.15\n[[emulated]]\nname = "sim2"\nlatency = 0.15\n'


@pytest.fixture
def gw(tmp_path):
    g = Gateway(tmp_path, SLOW_SIM)
    g.cli("init-db")
    g.cli("network", "add", "N")
    rows = "\n".join(f"m{i},+32470{i:06d},sms,nl" for i in range(60))
    (tmp_path / "m.csv").write_text("name,phone,channel,lang\n" + rows + "\n")
    g.cli("member", "import", "--network", "N", str(tmp_path / "m.csv"))
    yield g
    g.stop()



def sending_count(g):
    return g.rows("SELECT count(*) FROM message WHERE state='sending'")[0][0]


def left_count(g):
    return g.rows("SELECT count(*) FROM message WHERE state IN ('sent', 'delivered')")[0][0]


def test_kill_9_mid_dispatch_loses_nothing(gw):
    alert_id = int(gw.cli("alert", "send", "--network", "N", "--category", "urgent", "--text", "x").stdout)
    gw.start()
    # Read the database directly, sends in flight last: a `gatewayd alert status` subprocess between the
    # check and the kill takes seconds on a loaded machine, long enough for every send to finish.
    gw.wait_for(lambda: left_count(gw) >= 10 and sending_count(gw) > 0, every=0.01)
    gw.kill(signal.SIGKILL)
    inflight = {r[0] for r in gw.rows("SELECT id FROM message WHERE state='sending'")}
    assert inflight, "the kill should have caught sends in flight"
    gw.start()
    gw.wait_for(lambda: gw.status(alert_id)["state"] == "done", timeout=90)
    counts = gw.status(alert_id)["messages"]
    assert sum(counts.values()) == 60 and set(counts) <= {"sent", "delivered"}
    flagged = {r[0] for r in gw.rows("SELECT id FROM message WHERE possible_duplicate")}
    assert flagged == inflight
    interrupted = {r[0] for r in gw.rows("SELECT message_id FROM attempt WHERE result='interrupted'")}
    assert interrupted == inflight
    assert gw.rows("SELECT count(*) FROM attempt WHERE ended_at IS NULL")[0][0] == 0


def test_repeated_kills_still_account_for_every_message(gw):
    alert_id = int(gw.cli("alert", "send", "--network", "N", "--category", "urgent", "--text", "x").stdout)
    for _ in range(3):
        gw.start()
        time.sleep(0.8)
        gw.kill(signal.SIGKILL)
    gw.start()
    gw.wait_for(lambda: gw.status(alert_id)["state"] == "done", timeout=90)
    counts = gw.status(alert_id)["messages"]
    assert sum(counts.values()) == 60 and set(counts) <= {"sent", "delivered", "failed"}
    # Sends are at most: one per message plus one flagged resend per interrupted message.
    per_message = gw.rows("SELECT message_id, count(*) FROM attempt GROUP BY message_id")
    flagged = {r[0] for r in gw.rows("SELECT id FROM message WHERE possible_duplicate")}
    for message_id, tries in per_message:
        assert tries == 1 or message_id in flagged


def test_sigterm_finishes_in_flight_and_exits_0(gw):
    alert_id = int(gw.cli("alert", "send", "--network", "N", "--category", "urgent", "--text", "x").stdout)
    gw.start()
    gw.wait_for(lambda: sending_count(gw) > 0, every=0.01)
    assert gw.kill(signal.SIGTERM) == 0
    counts = gw.status(alert_id)["messages"]
    assert "sending" not in counts and counts.get("queued", 0) > 0
    assert gw.rows("SELECT count(*) FROM message WHERE possible_duplicate")[0][0] == 0


def test_status_json_reports_devices_and_queue(gw):
    import json
    gw.cli("alert", "send", "--network", "N", "--category", "prevention", "--text", "x")
    gw.start()
    gw.wait_for(lambda: len(json.loads(gw.cli("status", "--json").stdout)["devices"]) == 2)
    report = json.loads(gw.cli("status", "--json").stdout)
    assert {d["name"] for d in report["devices"]} == {"sim1", "sim2"}
    assert report["devices"][0]["state"] == "up"
    assert "queued" in report["queue"] and "oldest_queued_seconds" in report["queue"]
