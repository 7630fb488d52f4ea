"""Self-test: the scheduled proof passes on a working path and fails plainly otherwise."""
from __future__ import annotations

import time
from datetime import timedelta

import pytest

from gatewayd.channels.base import DeviceHealth, DeviceState, InboundText, Outcome
from gatewayd.config import SelfTestConfig
from gatewayd.inbound import ReplyKind, handle_reply
from gatewayd.model import utcnow
from gatewayd.selftest import SelfTest, failed_selftest
from gatewayd.store import SYSTEM_CHECK_PERIOD


def drain(store, outcome):
    c = store.claim("sms", "sim1", "n")
    store.complete(c, "sim1", outcome)
    return c


@pytest.fixture
def test(store):
    return SelfTest(SelfTestConfig(every_hours=24, to_number="0470999999", wait_minutes=10), store, "n")


def test_first_tick_starts_a_test_sms(test, store):
    assert test.tick() is None
    c = store.claim("sms", "sim1", "n")
    assert c.delivery.number == "+32470999999" and c.delivery.text.startswith("gatewayd self-test")


def test_loopback_text_coming_back_passes(test, store):
    test.tick()
    c = drain(store, Outcome.sent(reference=1))
    kind = handle_reply(store, InboundText("sim2", "+32470999999", c.delivery.text))
    assert kind is ReplyKind.SELFTEST
    result = test.tick()
    assert result.ok and failed_selftest(store, "n") == ""


def test_failed_send_fails_the_test_with_the_reason(test, store):
    test.tick()
    drain(store, Outcome.failed("+CMS ERROR: 38 network out of order"))
    result = test.tick()
    assert not result.ok and "38 network out of order" in result.detail
    assert failed_selftest(store, "n").startswith("self-test failed")


def test_no_proof_in_time_fails(test, store):
    test.tick()
    drain(store, Outcome.sent(reference=1))
    assert test.tick() is None                       # still waiting
    result = test.tick(utcnow() + timedelta(minutes=11))
    assert not result.ok and "no proof within 10 min" in result.detail


def test_next_test_waits_for_the_schedule(test, store):
    test.tick()
    drain(store, Outcome.failed("x"))
    test.tick()
    assert test.tick() is None and store.claim("sms", "sim1", "n") is None
    test.tick(utcnow() + timedelta(hours=25))
    time.sleep(SYSTEM_CHECK_PERIOD)      # system messages are looked for this often
    assert store.claim("sms", "sim1", "n") is not None


def test_selftest_reply_is_not_put_in_the_police_inbox(store):
    from gatewayd.model import InboundMessage
    handle_reply(store, InboundText("sim2", "+32470999999", "gatewayd self-test abcd1234"))
    with store.session() as s:
        assert [m.kind for m in s.query(InboundMessage)] == ["selftest"]


def test_failed_selftest_raises_the_keeper_alert_once(test, store):
    from gatewayd.config import KeeperConfig
    from gatewayd.keeper import Keeper
    keeper = Keeper(KeeperConfig(sms_to="+32470999888", queue_stuck_minutes=100_000), store, "n")
    store.record_device("sim1", "sms", "n", DeviceHealth(DeviceState.UP))     # an SMS path for the keeper
    test.tick()
    drain(store, Outcome.failed("+CMS ERROR: 38 network out of order"))
    test.tick()
    notices = keeper.check()
    assert [n.key for n in notices] == ["selftest"] and "38 network out of order" in notices[0].text
    assert keeper.check() == []                      # told once, not every check
