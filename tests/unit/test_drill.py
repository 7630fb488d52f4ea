"""Drills: everything runs but nothing goes on the air; drill mode marks every alert, and what follows
a drill (feedback, a correction) is a drill too; a reply is never linked to a drill."""
from __future__ import annotations

from dataclasses import replace

import pytest

from gatewayd.channels.base import Outcome
from gatewayd.store import AlertRequest, Store
from tests.conftest import FAST_POLICY, add_members, run_until_idle, send, sim


@pytest.fixture
def net(store):
    store.add_network("N")
    return "N"


def test_drill_runs_everything_but_sends_nothing(store, net):
    add_members(store, net, 5)
    a = send(store, drill=True)
    s1 = sim("sim1")
    run_until_idle(store, [s1])
    assert s1.sent == []
    report = store.alert_report(a)
    assert report["drill"] is True and len(report["recipients"]) == 5
    assert {r["state"] for r in report["recipients"]} == {"sent"}


def test_drill_mode_in_config_marks_every_alert(sqlite_url):
    from gatewayd.db import make_engine
    s = Store(make_engine(sqlite_url), replace(FAST_POLICY, drill=True))
    s.add_network("N")
    add_members(s, "N", 1)
    assert s.alert_status(send(s))["drill"] is True


def test_feedback_on_a_drill_is_a_drill(store, net):
    add_members(store, net, 2)
    drill = send(store, drill=True)
    fb = store.enqueue_alert(AlertRequest(networks=(), category="feedback", text="x", parent_id=drill)).alert_id
    assert store.alert_status(fb)["drill"] is True


def test_correction_in_drill_mode_is_a_drill(sqlite_url):
    from gatewayd.db import make_engine
    real = Store(make_engine(sqlite_url), FAST_POLICY)
    real.add_network("N")
    add_members(real, "N", 1)
    a = send(real)
    drill_mode = Store(make_engine(sqlite_url), replace(FAST_POLICY, drill=True))
    assert drill_mode.alert_status(drill_mode.correct_alert(a, "fix").alert_id)["drill"] is True


def test_reply_is_not_linked_to_a_drill_the_member_never_received(store, net):
    nums = add_members(store, net, 1)
    real = send(store)
    store.complete(store.claim("sms", "sim1", "t"), "sim1", Outcome.sent(reference=1))
    send(store, drill=True)
    store.complete(store.claim("sms", "sim1", "t"), "sim1", Outcome.sent(reference=2))
    assert store.latest_alert_to(nums[0])[0] == real
