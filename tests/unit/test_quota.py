"""SIM fair-use quotas (gatewayd/quota.py): work spread to the other SIM, counts that survive a restart,
distinct recipients, urgent past the limit only when configured, and what the preview says."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from gatewayd.config import parse_config
from gatewayd.quota import QuotaLimits, QuotaTracker, check_alert
from tests.conftest import add_members, run_until_idle, send, sim


@pytest.fixture
def net(store):
    store.add_network("N")
    return "N"


def tracker(store, limits, urgent_may_exceed=False):
    return QuotaTracker(store, limits, "Europe/Brussels", urgent_may_exceed)


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


def test_spent_recipient_quota_counts_as_nothing_left(store, net):
    add_members(store, net, 3)
    send(store)
    t = tracker(store, {"sim1": QuotaLimits(recipients_per_month=3)})
    run_until_idle(store, [sim("sim1")], t, timeout=3)
    assert t.remaining("sim1", datetime.now(timezone.utc)) == 0


def test_preview_says_when_the_quota_cannot_carry_an_alert(store):
    cfg = parse_config({"modems": [{"name": "sim1", "port": "/dev/null", "quota_per_day": 350}],
                        "dispatch": {"urgent_may_exceed_quota": True}})
    t = QuotaTracker.from_config(store, cfg)
    now = datetime.now(timezone.utc)
    assert check_alert(t, cfg, 300, "prevention", now).fits
    over = check_alert(t, cfg, 1000, "urgent", now)
    assert not over.fits and over.sends_anyway and "allow 350 more SMS today" in over.message()
    assert not check_alert(t, cfg, 1000, "prevention", now).sends_anyway
