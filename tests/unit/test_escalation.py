"""Escalation policy (issue 15): the other channel for members unconfirmed after X minutes."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, update

from gatewayd.db import make_engine
from gatewayd.escalation import escalate_due, plan
from gatewayd.model import Message, MessageState
from gatewayd.store import AlertRequest, Store
from tests.conftest import FAST_POLICY

T0 = datetime(2026, 12, 2, 10, 0, tzinfo=timezone.utc)
POLICY = replace(FAST_POLICY, escalate_after_minutes_urgent=5.0)
SMS_MEMBER, VOICE_MOBILE, LANDLINE, BOTH = "+32470000001", "+32479000002", "+3211000099", "+32470000003"


@pytest.fixture
def store(sqlite_url):
    s = Store(make_engine(sqlite_url), POLICY)
    s.add_network("N", zone="Zone Noord")
    s.add_member("N", SMS_MEMBER, channel="sms")
    s.add_member("N", VOICE_MOBILE, channel="voice")
    s.add_member("N", LANDLINE, channel="voice")
    s.add_member("N", BOTH, channel="sms+voice")
    yield s
    s.engine.dispose()


def send(store: Store, category: str = "urgent") -> int:
    return store.enqueue_alert(AlertRequest(networks=("N",), category=category, text="Inbraak."), now=T0).alert_id


def rows(store: Store, alert_id: int) -> list[tuple]:
    with store.session() as s:
        return [tuple(r) for r in s.execute(select(Message.number, Message.channel, Message.escalated)
                                            .where(Message.alert_id == alert_id).order_by(Message.id))]


def escalated(store: Store, alert_id: int) -> set[tuple]:
    return {(n, ch) for n, ch, esc in rows(store, alert_id) if esc}


def set_state(store: Store, number: str, channel: str, state: MessageState) -> None:
    with store.engine.begin() as c:
        c.execute(update(Message).where(Message.number == number, Message.channel == channel).values(state=state.value))


def test_nothing_escalates_before_the_time(store):
    a = send(store)
    assert escalate_due(store, POLICY, T0 + timedelta(minutes=4)) == 0 and escalated(store, a) == set()


def test_unconfirmed_members_get_their_other_channel(store):
    a = send(store)
    escalate_due(store, POLICY, T0 + timedelta(minutes=5, seconds=1))
    # SMS not delivered -> a call; a call not acknowledged -> an SMS, but only to a mobile; sms+voice: nothing.
    assert escalated(store, a) == {(SMS_MEMBER, "voice"), (VOICE_MOBILE, "sms")}


def test_confirmed_members_are_not_escalated(store):
    a = send(store)
    set_state(store, SMS_MEMBER, "sms", MessageState.DELIVERED)
    set_state(store, VOICE_MOBILE, "voice", MessageState.ACKNOWLEDGED)
    escalate_due(store, POLICY, T0 + timedelta(minutes=6))
    assert escalated(store, a) == set()


def test_a_delivered_but_unacknowledged_call_escalates_to_sms(store):
    a = send(store)
    set_state(store, VOICE_MOBILE, "voice", MessageState.DELIVERED)
    escalate_due(store, POLICY, T0 + timedelta(minutes=6))
    assert (VOICE_MOBILE, "sms") in escalated(store, a)


def test_nobody_is_escalated_twice(store):
    a = send(store)
    escalate_due(store, POLICY, T0 + timedelta(minutes=6))
    assert escalate_due(store, POLICY, T0 + timedelta(minutes=7)) == 0 and len(escalated(store, a)) == 2


def test_cancel_stops_escalation(store):
    a = send(store)
    store.cancel_alert(a, "agent")
    assert escalate_due(store, POLICY, T0 + timedelta(minutes=6)) == 0


def test_cancel_after_escalation_cancels_the_queued_escalations(store):
    a = send(store)
    escalate_due(store, POLICY, T0 + timedelta(minutes=6))
    store.cancel_alert(a, "agent")
    with store.session() as s:
        states = set(s.scalars(select(Message.state).where(Message.alert_id == a, Message.escalated.is_(True))))
    assert states == {MessageState.CANCELLED.value}


def test_correction_stops_escalation_of_the_original(store):
    a = send(store)
    store.correct_alert(a, "Correctie.", now=T0 + timedelta(minutes=1))
    escalate_due(store, POLICY, T0 + timedelta(minutes=6))
    assert escalated(store, a) == set()


def test_categories_without_a_policy_never_escalate(store):
    a = send(store, "prevention")
    assert escalate_due(store, POLICY, T0 + timedelta(hours=1)) == 0 and escalated(store, a) == set()


def test_plan_says_the_most_escalation_can_add(store):
    planned, _counts, _skipped = store.planned_messages([1], "member")
    p = plan(POLICY, "urgent", planned)
    assert (p.minutes, p.calls, p.sms) == (5.0, 1, 1)


def test_cancel_after_every_message_went_out_stops_escalation(store):
    # Every SMS and call left (the dispatcher then marks the alert done); the operator cancels
    # it ("0 messages not yet sent"): escalation must not revive it and call people later.
    a = send(store)
    with store.engine.begin() as c:
        c.execute(update(Message).where(Message.alert_id == a).values(state=MessageState.SENT.value))
    assert store.finish_alerts(now=T0 + timedelta(minutes=1)) == 1
    store.cancel_alert(a, "agent")
    assert escalate_due(store, POLICY, T0 + timedelta(minutes=6)) == 0 and escalated(store, a) == set()


def test_a_member_who_said_stop_is_not_escalated(store):
    # STOP is final at every step: the SMS went out (sent, no report yet), then the member
    # replied STOP. Escalation must not queue a call to them (nor show one on the alert page).
    a = send(store)
    with store.engine.begin() as c:
        c.execute(update(Message).where(Message.alert_id == a).values(state=MessageState.SENT.value))
    store.set_opt_out(SMS_MEMBER, True)
    escalate_due(store, POLICY, T0 + timedelta(minutes=6))
    assert SMS_MEMBER not in {n for n, _ch in escalated(store, a)}


def test_a_cancel_committing_while_escalation_queues_wins(pg_url):
    # PostgreSQL, two writers: the operator's cancel has written the alert row (its first
    # statement) and not yet committed when housekeeping escalates. Escalation must wait for
    # the cancel and then queue nothing, not overwrite `cancelled` with `active` and call people.
    import threading
    import time

    from gatewayd.model import Alert, AlertState
    s = Store(make_engine(pg_url), POLICY)
    try:
        s.add_network("N", zone="Zone Noord")
        s.add_member("N", SMS_MEMBER, channel="sms")
        a = send(s)
        with s.engine.begin() as c:     # the SMS went out; the alert is done
            c.execute(update(Message).where(Message.alert_id == a).values(state=MessageState.SENT.value))
        assert s.finish_alerts(now=T0 + timedelta(minutes=1)) == 1
        cancel = s.engine.connect()
        tx = cancel.begin()
        cancel.execute(update(Alert).where(Alert.id == a).values(state=AlertState.CANCELLED.value))
        worker = threading.Thread(target=escalate_due, args=(s, POLICY, T0 + timedelta(minutes=6)))
        worker.start()
        time.sleep(1.0)    # escalation has read the alert as active and waits on its row
        tx.commit()
        cancel.close()
        worker.join(timeout=60)
        assert not worker.is_alive()
        with s.engine.connect() as c:
            assert c.scalar(select(Alert.state).where(Alert.id == a)) == AlertState.CANCELLED.value
            assert c.scalar(select(Message.id).where(Message.alert_id == a, Message.escalated.is_(True),
                                                     Message.state == MessageState.QUEUED.value)) is None
    finally:
        s.engine.dispose()
