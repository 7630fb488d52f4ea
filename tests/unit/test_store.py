"""The store: members, enqueueing and the message state machine, on a real SQLite file."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from gatewayd.channels.base import DeliveryReport, Outcome
from gatewayd.errors import InputError, NotFound
from gatewayd.model import Attempt, Member, Message, RowProblem
from gatewayd.store import AlertRequest, ImportFailed
from tests.conftest import add_members


@pytest.fixture
def store(any_store):
    return any_store


NOW = lambda: datetime.now(timezone.utc)  # noqa: E731


def alert(store, network="N", category="urgent", text="Verdachte persoon", **kw):
    return store.enqueue_alert(AlertRequest(networks=(network,), category=category, text=text, **kw))


def messages(store, **where):
    with store.session() as s:
        q = select(Message)
        for k, v in where.items():
            q = q.where(getattr(Message, k) == v)
        return list(s.scalars(q.order_by(Message.id)))


@pytest.fixture
def net(store):
    store.add_network("N", zone="Leuven")
    return "N"


# ---------------------------------------------------------------- members
def test_member_number_is_normalised_to_e164(store, net):
    m = store.add_member(net, "0470 12 34 56")
    assert m.phone == "+32470123456"


def test_invalid_number_is_refused_with_reason(store, net):
    with pytest.raises(InputError) as exc:
        store.add_member(net, "0470 12")
    assert exc.value.field == "phone" and "not a valid number" in exc.value.reason


def test_member_is_unique_per_number_across_networks(store, net):
    store.add_network("M")
    a = store.add_member(net, "0470123456")
    b = store.add_member("M", "+32 470 12 34 56")
    assert a.id == b.id
    with store.session() as s:
        assert len(s.get(Member, a.id).networks) == 2


def test_same_member_twice_in_one_network_is_refused(store, net):
    store.add_member(net, "0470123456")
    with pytest.raises(InputError, match="already a member"):
        store.add_member(net, "0470123456")


def test_landline_defaults_to_voice_and_refuses_sms(store, net):
    assert store.add_member(net, "016 12 34 56").channel == "voice"
    with pytest.raises(InputError) as exc:
        store.add_member(net, "016 12 34 57", channel="sms")
    assert exc.value.field == "channel" and "landline" in exc.value.reason


def test_csv_import_is_all_or_nothing(store, net):
    csv = "name,phone,channel,lang\nAn,0470000001,sms,nl\nBad,12,sms,nl\nCe,0470000003,,fr\n"
    with pytest.raises(ImportFailed) as exc:
        store.import_members(net, csv)
    assert [str(e) for e in exc.value.errors] == ["line 3: phone: '12' is not a valid number (checked for region BE)"]
    assert messages(store) == [] and store.member_by_number("+32470000001") is None


def test_csv_import_skip_bad_imports_the_good_rows(store, net):
    csv = "name,phone,channel,lang\nAn,0470000001,sms,nl\nBad,12,sms,nl\nCe,0470000003,,xx\n"
    imported, errors = store.import_members(net, csv, skip_bad=True)
    assert imported == 1 and len(errors) == 2 and "lang" in str(errors[1]) and errors[1].problem == RowProblem.LANG_UNKNOWN


# ---------------------------------------------------------------- enqueue
def test_enqueue_makes_one_message_per_recipient_and_channel(store, net):
    add_members(store, net, 3)
    store.add_member(net, "0471000000", channel="sms+voice")
    r = alert(store)
    assert r.messages == {"sms": 4, "voice": 1}
    assert {m.state for m in messages(store)} == {"queued"}


def test_opted_out_members_are_not_addressed(store, net):
    nums = add_members(store, net, 2)
    store.set_opt_out(nums[0], True)
    r = alert(store)
    assert r.messages["sms"] == 1 and r.skipped == {"opted out": 1}


def test_text_follows_member_language(store, net):
    add_members(store, net, 1, lang="fr")
    add_members(store, net, 1, start=1, lang="nl")
    alert(store, text="Verdachte persoon", texts={"fr": "Personne suspecte"})
    assert [m.text for m in messages(store)] == ["Personne suspecte", "Verdachte persoon"]


def test_bad_alert_input_names_the_field(store, net):
    with pytest.raises(InputError) as exc:
        alert(store, category="panic")
    assert exc.value.field == "category"
    with pytest.raises(InputError) as exc:
        alert(store, text="   ")
    assert exc.value.field == "text"
    with pytest.raises(NotFound):
        alert(store, network="Nowhere")
    assert messages(store) == []


def test_feedback_goes_to_the_parent_alerts_recipients(store, net):
    add_members(store, net, 3)
    first = alert(store)
    add_members(store, net, 2, start=10)          # joined after the alert
    fb = store.enqueue_alert(AlertRequest(networks=(), category="feedback", text="Opgelost",
                                          parent_id=first.alert_id))
    assert fb.messages["sms"] == 3


def test_enqueue_ten_thousand_is_one_statement_batch(store, net):
    rows = "\n".join(f"m{i},+3247{i:07d},sms,nl" for i in range(2000))
    store.import_members(net, "name,phone,channel,lang\n" + rows)
    t = time.perf_counter()
    r = alert(store)
    assert r.messages["sms"] == 2000
    assert time.perf_counter() - t < 5.0     # generous; the benchmark holds the real target


# ---------------------------------------------------------------- claim order
def test_urgent_is_claimed_before_earlier_prevention(store, net):
    add_members(store, net, 3)
    alert(store, category="prevention", text="Sluit uw ramen")
    urgent = alert(store, category="urgent")
    c = store.claim("sms", "d1", "n")
    assert c.alert_id == urgent.alert_id


def test_priority_order_urgent_feedback_prevention(store, net):
    add_members(store, net, 1)
    p = alert(store, category="prevention").alert_id
    f = alert(store, category="feedback").alert_id
    u = alert(store, category="urgent").alert_id
    order = [store.claim("sms", "d1", "n").alert_id for _ in range(3)]
    assert order == [u, f, p]


def test_fifo_within_an_alert_and_round_robin_across_equal_alerts(store, net):
    add_members(store, net, 3)
    a = alert(store).alert_id
    b = alert(store).alert_id
    claims = [store.claim("sms", "d1", "n") for _ in range(6)]
    assert [c.alert_id for c in claims] == [a, b, a, b, a, b]
    a_ids = [c.message_id for c in claims if c.alert_id == a]
    assert a_ids == sorted(a_ids)


def test_prevention_waits_in_quiet_hours(store, net):
    add_members(store, net, 1)
    alert(store, category="prevention")
    assert store.claim("sms", "d1", "n", prevention_allowed=False) is None
    assert store.claim("sms", "d1", "n", prevention_allowed=True) is not None


def test_claim_only_takes_its_own_channel(store, net):
    store.add_member(net, "016123456")          # landline: voice
    alert(store)
    assert store.claim("sms", "d1", "n") is None
    assert store.claim("voice", "pbx", "n").delivery.number == "+3216123456"


def test_claim_writes_an_attempt_row(store, net):
    add_members(store, net, 1)
    alert(store)
    c = store.claim("sms", "d1", "node-a")
    with store.session() as s:
        att = s.get(Attempt, c.attempt_id)
    assert (att.message_id, att.device, att.node, att.ended_at) == (c.message_id, "d1", "node-a", None)
    assert messages(store)[0].state == "sending"


# ---------------------------------------------------------------- outcomes
def test_sent_records_reference_and_ends_attempt(store, net):
    add_members(store, net, 1)
    alert(store)
    c = store.claim("sms", "d1", "n")
    assert store.complete(c, "d1", Outcome.sent(reference=42, segments=2)) == "sent"
    m = messages(store)[0]
    assert (m.state, m.reference, m.segments) == ("sent", 42, 2)
    with store.session() as s:
        assert s.get(Attempt, c.attempt_id).result == "sent"


def test_retry_waits_for_backoff_then_gives_up_at_max_attempts(store, net):
    add_members(store, net, 1)
    alert(store, category="prevention")            # max_attempts_prevention = 3
    t = NOW()                                      # the test's clock: a slow machine cannot age the backoff
    for attempt in range(1, 4):
        c = store.claim("sms", "d1", "n", now=t)
        assert c is not None and c.attempts == attempt
        state = store.complete(c, "d1", Outcome.retry("busy"), now=t)
        if attempt < 3:
            assert state == "retry"
            assert store.claim("sms", "d1", "n", now=t) is None      # still backing off
        t += timedelta(seconds=1)                  # past backoff_max
    m = messages(store)[0]
    assert m.state == "failed" and "after 3 attempts" in m.reason


def test_backoff_doubles_and_is_capped(store):
    assert [store.backoff(n).total_seconds() for n in (1, 2, 3, 10)] == [0.05, 0.1, 0.2, 0.2]


def test_device_down_requeues_for_another_device_flagged(store, net):
    add_members(store, net, 1)
    alert(store)
    c = store.claim("sms", "d1", "n")
    assert store.complete(c, "d1", Outcome.device_down("port vanished", maybe_sent=True)) == "queued"
    c2 = store.claim("sms", "d2", "n")
    assert c2.message_id == c.message_id and c2.possible_duplicate


def test_device_failures_are_bounded_too(store, net):
    add_members(store, net, 1)
    alert(store)                                     # urgent: 5 attempts, plus 5 for device failures
    states = []
    while (c := store.claim("sms", "d1", "n")) is not None:
        states.append(store.complete(c, "d1", Outcome.device_down("Originate refused")))
    assert states == ["queued"] * 9 + ["failed"]
    assert "devices failed 10 times" in messages(store)[0].reason


def test_message_in_flight_when_alert_is_cancelled_is_not_requeued(store, net):
    add_members(store, net, 2)
    r = alert(store)
    c = store.claim("sms", "d1", "n")
    store.cancel_alert(r.alert_id, "agent")
    assert store.complete(c, "d1", Outcome.retry("busy")) == "cancelled"
    assert store.alert_status(r.alert_id)["messages"] == {"cancelled": 2}


def test_inflight_of_a_corrected_alert_is_cancelled_after_a_crash(store, net):
    add_members(store, net, 2)
    r = alert(store)
    store.claim("sms", "d1", "n")
    store.correct_alert(r.alert_id, "Correctie")
    store.recover_inflight("n", "resend")
    assert store.alert_status(r.alert_id)["messages"] == {"cancelled": 2}
    assert store.claim("sms", "d1", "n").alert_id != r.alert_id     # only the correction goes


def test_stop_cancels_what_waits_for_that_number(store, net):
    nums = add_members(store, net, 2)
    r = alert(store, category="prevention")
    store.set_opt_out(nums[0], True)
    assert store.alert_status(r.alert_id)["messages"] == {"cancelled": 1, "queued": 1}


def test_unapproved_alert_expires_and_cannot_be_approved_late(store, net):
    from dataclasses import replace as dc_replace
    store.policy = dc_replace(store.policy, approval_categories=("urgent",))
    add_members(store, net, 1)
    r = alert(store, author="ann")
    later = NOW() + timedelta(hours=3)
    store.expire_due(later)
    assert store.alert_status(r.alert_id) | {"expires_at": None} == {
        "id": r.alert_id, "state": "done", "category": "urgent", "drill": False, "expires_at": None,
        "messages": {"expired": 1}}
    with pytest.raises(InputError, match="alert"):
        store.approve_alert(r.alert_id, "bob", now=later)


def test_alert_whose_messages_all_back_off_does_not_block_others(store, net):
    add_members(store, net, 1)
    first = alert(store)
    t0 = NOW()            # one instant for both: a slow database must not let the backoff run out
    store.complete(store.claim("sms", "d1", "n", now=t0), "d1", Outcome.retry("busy"), now=t0)   # backing off
    second = alert(store)
    assert store.claim("sms", "d1", "n", now=t0).alert_id == second.alert_id
    assert first.alert_id != second.alert_id


def test_permanent_failure_keeps_reason(store, net):
    add_members(store, net, 1)
    alert(store)
    c = store.claim("sms", "d1", "n")
    store.complete(c, "d1", Outcome.failed("+CMS ERROR: 1 unassigned number"))
    assert messages(store)[0].reason == "+CMS ERROR: 1 unassigned number"


def test_expired_alert_is_never_sent_late(store, net):
    add_members(store, net, 2)
    r = alert(store)
    later = NOW() + timedelta(hours=3)         # urgent alerts expire after 2 h
    assert store.claim("sms", "d1", "n", now=later) is None
    assert store.alert_status(r.alert_id)["messages"] == {"expired": 2}


def test_cancel_stops_what_has_not_gone(store, net):
    add_members(store, net, 3)
    r = alert(store)
    c = store.claim("sms", "d1", "n")
    assert store.cancel_alert(r.alert_id, "agent") == 2
    store.complete(c, "d1", Outcome.sent(reference=1))
    assert store.alert_status(r.alert_id)["messages"] == {"cancelled": 2, "sent": 1}
    assert store.claim("sms", "d1", "n") is None


def test_finished_alert_is_marked_done(store, net):
    add_members(store, net, 1)
    r = alert(store)
    store.complete(store.claim("sms", "d1", "n"), "d1", Outcome.sent(reference=1))
    assert store.finish_alerts() == 1
    assert store.alert_status(r.alert_id)["state"] == "done"


# ---------------------------------------------------------------- crash recovery
def test_recovery_resends_inflight_once_flagged(store, net):
    add_members(store, net, 2)
    alert(store)
    store.claim("sms", "d1", "node-a")
    store.claim("sms", "d1", "node-b")          # another gateway's: not ours to touch
    rep = store.recover_inflight("node-a", "resend")
    assert (rep.resent, rep.failed) == (1, 0)
    states = {m.node: (m.state, m.possible_duplicate) for m in messages(store)}
    assert states == {"node-a": ("queued", True), "node-b": ("sending", False)}
    with store.session() as s:
        assert [a.result for a in s.scalars(select(Attempt).order_by(Attempt.id))] == ["interrupted", None]


def test_second_interruption_fails_instead_of_a_third_copy(store, net):
    add_members(store, net, 1)
    alert(store)
    store.claim("sms", "d1", "a")
    store.recover_inflight("a", "resend")
    store.claim("sms", "d1", "a")
    rep = store.recover_inflight("a", "resend")
    assert (rep.resent, rep.failed) == (0, 1)
    assert "two interruptions" in messages(store)[0].reason


def test_fail_policy_fails_inflight_with_reason(store, net):
    add_members(store, net, 1)
    alert(store)
    store.claim("sms", "d1", "a")
    store.recover_inflight("a", "fail")
    assert messages(store)[0].state == "failed"


# ---------------------------------------------------------------- delivery reports, replies
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
