"""The callback line, through the real `gatewayd run` and the real Asterisk.

A member whose calls were busy phones the box (the shipped [bin-callback]
context, caller ID = the member's number) and presses 1 at every alert; a
stranger phones too. Checked in `gatewayd alert report --json` and the audit log.
"""
from __future__ import annotations

import json
import sqlite3

import pytest

from tests.fixtures.asterisk import BUSY, CONFIRM, AsteriskRig, asterisk_rig, daemon_toml  # noqa: F401 (fixture)
from tests.fixtures.daemon import Gateway

pytestmark = [pytest.mark.asterisk, pytest.mark.timeout(240)]

MEMBER = BUSY                 # the member's own phone is busy whenever the box calls
STRANGER = "+3211999000"


def callback_gateway(tmp_path, rig: AsteriskRig) -> Gateway:
    asterisk = daemon_toml(rig, tmp_path / "audio", confirm_wait=2.0, callback_hours=2.0)
    # A long backoff keeps the busy member's messages waiting while they call back.
    g = Gateway(tmp_path, asterisk, backoff_base=600.0)
    g.cli("init-db")
    g.cli("network", "add", "N")
    g.cli("member", "add", "--network", "N", "--phone", MEMBER, "--channel", "voice", "--lang", "nl")
    return g


def report(g: Gateway, alert_id: int) -> dict:
    return json.loads(g.cli("alert", "report", str(alert_id), "--json").stdout)


def send(g: Gateway, text: str) -> int:
    return int(g.cli("alert", "send", "--network", "N", "--category", "urgent", "--text", text,
                     "--channel", "voice").stdout)


@pytest.fixture(scope="module")
def callbacks(tmp_path_factory, asterisk_rig):
    g = callback_gateway(tmp_path_factory.mktemp("callback"), asterisk_rig)
    try:
        first, latest = send(g, "Eerste bericht."), send(g, "Tweede bericht.")
        g.start()
        # Both calls to the member were busy: the messages wait for their retry.
        g.wait_for(lambda: all(report(g, a)["recipients"][0]["state"] == "retry" for a in (first, latest)),
                   timeout=60, every=0.5)
        asterisk_rig.call_the_box(MEMBER, CONFIRM)
        g.wait_for(lambda: all(c["confirmed"] for a in (first, latest) for c in report(g, a)["callbacks"])
                   and all(report(g, a)["callbacks"] for a in (first, latest)), timeout=90, every=0.5)
        asterisk_rig.call_the_box(STRANGER, CONFIRM)
        audit = lambda: sqlite3.connect(g.db).execute(  # noqa: E731
            "SELECT actor, action, detail FROM audit_entry WHERE action LIKE 'callback%' ORDER BY id").fetchall()
        g.wait_for(lambda: any("****" in row[0] for row in audit()), timeout=60, every=0.5)
        # Give a stranger's call the time it would need to hear (and confirm) anything.
        g.wait_for(lambda: asterisk_rig.active_channels() == 0, timeout=60, every=0.5)
        before_forged = audit()
        # A caller ID that carries ",Number: <the member>" (a forged ID from a hostile trunk).
        asterisk_rig.call_the_box("forged", CONFIRM)
        g.wait_for(lambda: sum(1 for row in audit() if row[1] == "callback") == 3, timeout=60, every=0.5)
        g.wait_for(lambda: asterisk_rig.active_channels() == 0, timeout=60, every=0.5)
        return {"first": report(g, first), "latest": report(g, latest), "ids": (first, latest), "audit": before_forged,
                "forged": audit()[len(before_forged):]}
    finally:
        g.stop()


def test_member_hears_their_alerts_newest_first(callbacks):
    first, latest = callbacks["ids"]
    member_calls = [json.loads(d) for actor, action, d in callbacks["audit"]
                    if action == "callback" and MEMBER in actor]
    assert [c["alerts"] for c in member_calls] == [[latest, first]]


def test_pressing_1_on_the_callback_line_acknowledges_each_alert(callbacks):
    for key in ("first", "latest"):
        row = callbacks[key]["recipients"][0]
        assert (row["state"], row["reason"]) == ("acknowledged", "confirmed by the member on the callback line")


def test_callback_is_on_each_alerts_report(callbacks):
    for key in ("first", "latest"):
        assert [(c["number"], c["confirmed"]) for c in callbacks[key]["callbacks"]] == [(MEMBER, True)]


def test_every_confirmation_is_in_the_audit_log(callbacks):
    assert sorted(json.loads(d)["alert_id"] for _a, action, d in callbacks["audit"]
                  if action == "callback.confirm") == sorted(callbacks["ids"])


def test_stranger_is_logged_redacted_and_hears_no_alert(callbacks):
    strangers = [(actor, json.loads(d)) for actor, action, d in callbacks["audit"] if "****" in actor]
    assert strangers == [("callback:+3211****00", {"member_id": None, "alerts": [], "device": "asterisk"})]
    assert all(c["number"] != STRANGER for key in ("first", "latest") for c in callbacks[key]["callbacks"])
    # The stranger kept pressing 1: no confirmation came of it.
    assert sum(1 for _a, action, _d in callbacks["audit"] if action == "callback.confirm") == 2


def test_a_caller_id_carrying_fields_is_refused_as_a_stranger(callbacks):
    """A caller ID with ",Number: <member>" in it is no phone number: the dialplan keeps only its
    digits, gatewayd refuses what is left (too long for any number) and the caller is a stranger,
    logged as unknown -- not as the member, and not with the forged text in the audit log."""
    assert [(actor, json.loads(d)) for actor, action, d in callbacks["forged"] if action == "callback"] == \
        [("callback:u****wn", {"member_id": None, "alerts": [], "device": "asterisk"})]
