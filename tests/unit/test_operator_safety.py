"""Operator- and police-safe sending: SIM quotas, drill, supersede, four-eyes."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

import pytest

from gatewayd.channels.base import Outcome
from gatewayd.channels.emulated import EmulatedChannel
from gatewayd.config import EmulatedConfig, parse_config
from gatewayd.dispatch import Dispatcher
from gatewayd.errors import InputError
from gatewayd.quota import QuotaLimits, QuotaTracker, check_alert
from gatewayd.store import AlertRequest, Store
from tests.conftest import FAST_POLICY, add_members


@pytest.fixture
def net(store):
    store.add_network("N")
    return "N"


def sim(name, latency=0.0):
    return EmulatedChannel(EmulatedConfig(name=name, latency=latency, rate_per_minute=60000))


def send(store, category="urgent", **kw):
    return store.enqueue_alert(AlertRequest(networks=("N",), category=category, text="tekst", **kw)).alert_id


def run_until_idle(store, channels, quota=None, policy=FAST_POLICY, timeout=15):
    d = Dispatcher(policy, store, channels, node="t", quota=quota)
    d.start()
    try:
        return d.wait_idle(timeout)
    finally:
        d.stop()


def tracker(store, limits, urgent_may_exceed=False):
    return QuotaTracker(store, limits, "Europe/Brussels", urgent_may_exceed)


# ---------------------------------------------------------------- quotas
def test_quota_spreads_work_to_the_other_sim(store, net):
    add_members(store, net, 20)
    a = send(store)
    s1, s2 = sim("sim1", 0.01), sim("sim2", 0.01)
    run_until_idle(store, [s1, s2], tracker(store, {"sim1": QuotaLimits(per_day=5)}))
    assert len(s1.sent) == 5 and len(s2.sent) == 15
    assert set(store.alert_status(a)["messages"]) <= {"sent", "delivered"}


def test_quota_counts_survive_a_restart(store, net):
    add_members(store, net, 6)
    send(store)
    run_until_idle(store, [sim("sim1")], tracker(store, {"sim1": QuotaLimits(per_day=8)}))
    add_members(store, net, 6, start=100)
    b = send(store)
    again = sim("sim1")
    run_until_idle(store, [again], tracker(store, {"sim1": QuotaLimits(per_day=8)}), timeout=2)
    # 12 recipients now, 6 counted before the "restart": only 2 more fit today.
    assert len(again.sent) == 2
    assert store.alert_status(b)["messages"].get("queued", 0) == 10


def test_distinct_recipient_quota(store, net):
    add_members(store, net, 5)
    send(store)
    s1 = sim("sim1")
    run_until_idle(store, [s1], tracker(store, {"sim1": QuotaLimits(recipients_per_month=3)}), timeout=2)
    assert len({r.number for r in s1.sent}) == 3


def test_urgent_may_exceed_quota_only_when_configured(store, net):
    add_members(store, net, 4)
    p = send(store, category="prevention")
    u = send(store, category="urgent")
    s1 = sim("sim1")
    limits = {"sim1": QuotaLimits(per_day=1)}
    run_until_idle(store, [s1], tracker(store, limits, urgent_may_exceed=True), timeout=3)
    assert set(store.alert_status(u)["messages"]) <= {"sent", "delivered"}
    assert store.alert_status(p)["messages"] == {"queued": 4}


def test_preview_says_when_the_quota_cannot_carry_an_alert(store):
    cfg = parse_config({"modems": [{"name": "sim1", "port": "/dev/null", "quota_per_day": 350}],
                        "dispatch": {"urgent_may_exceed_quota": True}})
    t = QuotaTracker.from_config(store, cfg)
    now = datetime.now(timezone.utc)
    assert check_alert(t, cfg, 300, "prevention", now).fits
    over = check_alert(t, cfg, 1000, "urgent", now)
    assert not over.fits and over.sends_anyway and "allow 350 more SMS today" in over.message()
    assert not check_alert(t, cfg, 1000, "prevention", now).sends_anyway


# ---------------------------------------------------------------- drill
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


# ---------------------------------------------------------------- correct / supersede
def test_correction_reaches_exactly_those_who_had_the_original(store, net):
    add_members(store, net, 10)
    original = send(store)
    had = []
    for _ in range(4):
        c = store.claim("sms", "sim1", "t")
        store.complete(c, "sim1", Outcome.sent(reference=1))
        had.append(c.delivery.number)
    in_flight = store.claim("sms", "sim1", "t").delivery.number
    fix = store.correct_alert(original, "Correctie: het was de Bondgenotenlaan")
    assert fix.messages == {"sms": 5, "voice": 0}
    report = store.alert_report(fix.alert_id)
    assert sorted(r["number"] for r in report["recipients"]) == sorted(had + [in_flight])
    assert report["parent_id"] == original
    orig = store.alert_report(original)
    assert orig["superseded_by"] == fix.alert_id
    assert orig["messages"] == {"sent": 4, "sending": 1, "cancelled": 5}


def test_a_corrected_alert_cannot_be_corrected_twice(store, net):
    add_members(store, net, 1)
    a = send(store)
    store.correct_alert(a, "fix")
    with pytest.raises(InputError, match="already corrected"):
        store.correct_alert(a, "fix again")


# ---------------------------------------------------------------- four eyes
@pytest.fixture
def four_eyes(sqlite_url):
    from gatewayd.db import make_engine
    s = Store(make_engine(sqlite_url), replace(FAST_POLICY, approval_categories=("urgent",)))
    s.add_network("N")
    add_members(s, "N", 3)
    return s


def test_alert_needing_approval_waits(four_eyes):
    a = four_eyes.enqueue_alert(AlertRequest(networks=("N",), category="urgent", text="x", author="ann")).alert_id
    assert four_eyes.alert_status(a)["state"] == "pending_approval"
    assert four_eyes.claim("sms", "sim1", "t") is None


def test_author_cannot_approve_own_alert(four_eyes):
    a = four_eyes.enqueue_alert(AlertRequest(networks=("N",), category="urgent", text="x", author="ann")).alert_id
    with pytest.raises(InputError, match="second person"):
        four_eyes.approve_alert(a, "ann")


def test_second_person_releases_the_alert(four_eyes):
    a = four_eyes.enqueue_alert(AlertRequest(networks=("N",), category="urgent", text="x", author="ann")).alert_id
    four_eyes.approve_alert(a, "bob")
    assert four_eyes.alert_report(a)["approved_by"] == "bob"
    assert four_eyes.claim("sms", "sim1", "t").alert_id == a


def test_categories_without_approval_go_at_once(four_eyes):
    a = four_eyes.enqueue_alert(AlertRequest(networks=("N",), category="prevention", text="x")).alert_id
    assert four_eyes.alert_status(a)["state"] == "active"


def test_spent_recipient_quota_counts_as_nothing_left(store, net):
    add_members(store, net, 3)
    send(store)
    t = tracker(store, {"sim1": QuotaLimits(recipients_per_month=3)})
    run_until_idle(store, [sim("sim1")], t, timeout=3)
    assert t.remaining("sim1", datetime.now(timezone.utc)) == 0


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
