"""Store, replies.py: delivery reports and opt-outs."""
from __future__ import annotations

from gatewayd.channels.base import DeliveryReport, Outcome
from tests.conftest import add_members
from tests.unit.store.conftest import alert, messages


# ---------------------------------------------------------------- delivery reports
def _sent(store, ref):
    c = store.claim("sms", "d1", "n")
    store.complete(c, "d1", Outcome.sent(reference=ref))
    return c


def test_delivery_report_marks_delivered(store, net):
    add_members(store, net, 1)
    alert(store)
    c = _sent(store, 7)
    assert store.apply_delivery_report(DeliveryReport("d1", 7, "0470000000", True)) == c.message_id
    assert messages(store)[0].state == "delivered"


def test_delivery_report_after_reference_wrap_matches_newest(store, net):
    nums = add_members(store, net, 1)
    alert(store)
    first = _sent(store, 5)
    alert(store)                                   # 256 sends later the reference is 5 again
    second = _sent(store, 5)
    assert store.apply_delivery_report(DeliveryReport("d1", 5, nums[0], True)) == second.message_id
    assert store.apply_delivery_report(DeliveryReport("d1", 5, nums[0], True)) == first.message_id


def test_failed_report_fails_the_message(store, net):
    nums = add_members(store, net, 1)
    alert(store)
    _sent(store, 9)
    store.apply_delivery_report(DeliveryReport("d1", 9, nums[0], False, "SM rejected"))
    assert messages(store)[0].state == "failed"


# ---------------------------------------------------------------- opt-out
def test_stop_cancels_what_waits_for_that_number(store, net):
    nums = add_members(store, net, 2)
    r = alert(store, category="prevention")
    store.set_opt_out(nums[0], True)
    assert store.alert_status(r.alert_id)["messages"] == {"cancelled": 1, "queued": 1}
