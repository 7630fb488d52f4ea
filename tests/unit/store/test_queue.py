"""Store, queue.py: the claim order, the message state machine, its two budgets, crash recovery and
what a claim costs, on a real database (SQLite and PostgreSQL)."""
from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import event, select, update

from gatewayd.channels.base import Outcome
from gatewayd.model import Attempt, Member, Message, MessageState
from tests.conftest import add_members
from tests.unit.store.conftest import NOW, alert, messages, now


# ---------------------------------------------------------------- helpers
def message(store, message_id=None) -> Message:
    with store.session() as s:
        q = select(Message).order_by(Message.id)
        if message_id is not None:
            q = q.where(Message.id == message_id)
        return s.scalars(q).first()


def claim_at(store, t, device="d1"):
    return store.claim("sms", device, "n", now=t)


def set_member(store, number, **values):
    """What the member page does when an admin makes a member inactive (a plain row update)."""
    with store.engine.begin() as c:
        c.execute(update(Member).where(Member.phone == number).values(**values))


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


def test_alert_whose_messages_all_back_off_does_not_block_others(store, net):
    add_members(store, net, 1)
    first = alert(store)
    t0 = NOW()            # one instant for both: a slow database must not let the backoff run out
    store.complete(store.claim("sms", "d1", "n", now=t0), "d1", Outcome.retry("busy"), now=t0)   # backing off
    second = alert(store)
    assert store.claim("sms", "d1", "n", now=t0).alert_id == second.alert_id
    assert first.alert_id != second.alert_id


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


def test_permanent_failure_keeps_reason(store, net):
    add_members(store, net, 1)
    alert(store)
    c = store.claim("sms", "d1", "n")
    store.complete(c, "d1", Outcome.failed("+CMS ERROR: 1 unassigned number"))
    assert messages(store)[0].reason == "+CMS ERROR: 1 unassigned number"


# ---------------------------------------------------------------- separate budgets: the devices' and the recipient's
def test_device_failures_do_not_spend_the_recipients_attempts(store, net):
    add_members(store, net, 1)
    alert(store)                                            # urgent: max_attempts_urgent = 5
    t = now()
    for _ in range(4):
        assert store.complete(claim_at(store, t), "d1", Outcome.device_down("port vanished"), now=t) == "queued"
    c = claim_at(store, t)
    assert (c.attempts, c.device_failures) == (1, 4)
    # The recipient's first "busy": a retry, not "no success after 5 attempts".
    assert store.complete(c, "d1", Outcome.retry("busy"), now=t) == MessageState.RETRY.value


def test_each_budget_has_its_own_limit_and_the_report_names_it(store, net):
    store.policy = replace(store.policy, max_device_failures=3, max_attempts_urgent=2)
    nums = add_members(store, net, 2)
    a = alert(store).alert_id
    t = now()
    first = {}
    while (c := claim_at(store, t)) is not None:
        # The first member's devices keep failing; the second member never answers.
        outcome = (Outcome.device_down("timeout") if c.delivery.number == nums[0] else Outcome.retry("no answer"))
        first[c.delivery.number] = store.complete(c, "d1", outcome, now=t)
        t += timedelta(seconds=1)
    report = {r["number"]: r for r in store.alert_report(a)["recipients"]}
    dev, rcpt = report[nums[0]], report[nums[1]]
    assert dev["state"] == rcpt["state"] == MessageState.FAILED.value
    assert (dev["attempts"], dev["device_failures"]) == (0, 3)
    assert "devices' budget" in dev["reason"] and "max_device_failures = 3" in dev["reason"]
    assert (rcpt["attempts"], rcpt["device_failures"]) == (2, 0)
    assert "recipient's budget" in rcpt["reason"] and "max_attempts_urgent = 2" in rcpt["reason"]


# ---------------------------------------------------------------- expiry, finishing
def test_expired_alert_is_never_sent_late(store, net):
    add_members(store, net, 2)
    r = alert(store)
    later = NOW() + timedelta(hours=3)         # urgent alerts expire after 2 h
    assert store.claim("sms", "d1", "n", now=later) is None
    assert store.alert_status(r.alert_id)["messages"] == {"expired": 2}


def test_finished_alert_is_marked_done(store, net):
    add_members(store, net, 1)
    r = alert(store)
    store.complete(store.claim("sms", "d1", "n"), "d1", Outcome.sent(reference=1))
    assert store.finish_alerts() == 1
    assert store.alert_status(r.alert_id)["state"] == "done"


# ---------------------------------------------------------------- opt-out and inactive members: final at every step
def test_claim_never_takes_a_message_of_an_inactive_member(store, net):
    nums = add_members(store, net, 2)
    alert(store)
    set_member(store, nums[0], active=False)
    c = store.claim("sms", "d1", "n")
    assert c.delivery.number == nums[1]
    assert store.claim("sms", "d1", "n") is None
    m = message(store)
    assert m.state == MessageState.CANCELLED.value and "inactive" in m.reason


def test_claim_never_takes_a_message_of_an_opted_out_member(store, net):
    """A row left queued for a member who is opted out (e.g. by a race) is cancelled at the claim."""
    nums = add_members(store, net, 1)
    alert(store)
    set_member(store, nums[0], opted_out=True)              # the flag only, as a race would leave it
    assert store.claim("sms", "d1", "n") is None
    assert message(store).state == MessageState.CANCELLED.value
    with store.session() as s:
        assert s.scalars(select(Attempt)).all() == []       # never handed to a device


@pytest.mark.parametrize("outcome", [Outcome.retry("busy"), Outcome.device_down("port gone", maybe_sent=True),
                                     Outcome.sent(reference=4), Outcome.failed("barred")],
                         ids=["retry", "device_down", "sent", "failed"])
def test_an_inflight_try_of_a_member_who_said_stop_ends_cancelled(store, net, outcome):
    nums = add_members(store, net, 1)
    alert(store)
    c = store.claim("sms", "d1", "n")
    store.set_opt_out(nums[0], True)                        # STOP arrives while the SMS is on its way
    assert store.complete(c, "d1", outcome) == MessageState.CANCELLED.value
    m = message(store)
    assert m.state == MessageState.CANCELLED.value and outcome.kind.value in m.reason
    assert store.claim("sms", "d1", "n") is None
    with store.session() as s:
        assert s.get(Attempt, c.attempt_id).result == outcome.kind.value    # what the device said is kept


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


def test_inflight_of_a_corrected_alert_is_cancelled_after_a_crash(store, net):
    add_members(store, net, 2)
    r = alert(store)
    store.claim("sms", "d1", "n")
    store.correct_alert(r.alert_id, "Correctie")
    store.recover_inflight("n", "resend")
    assert store.alert_status(r.alert_id)["messages"] == {"cancelled": 2}
    assert store.claim("sms", "d1", "n").alert_id != r.alert_id     # only the correction goes


def test_recovery_does_not_resend_to_a_member_who_said_stop(store, net):
    nums = add_members(store, net, 2)
    alert(store)
    store.claim("sms", "d1", "n")
    store.claim("sms", "d1", "n")
    store.set_opt_out(nums[0], True)
    rep = store.recover_inflight("n", "resend")
    assert (rep.resent, rep.cancelled) == (1, 1)
    c = store.claim("sms", "d1", "n")
    assert c.delivery.number == nums[1] and store.claim("sms", "d1", "n") is None


# ---------------------------------------------------------------- claim cost and the retry backlog
def _vm_steps(store, fn) -> int:
    """SQLite virtual-machine steps FN costs (a progress handler every 100 steps): a count of the
    work done that a loaded machine cannot distort, unlike a stopwatch."""
    steps = [0]

    def tick():
        steps[0] += 1
        return 0

    def on_checkout(dbapi_conn, record, proxy):
        dbapi_conn.set_progress_handler(tick, 100)

    event.listen(store.engine, "checkout", on_checkout)
    try:
        fn()
    finally:
        event.remove(store.engine, "checkout", on_checkout)
    return steps[0]


def _backlog(store, backing_off: int, fresh: int = 10) -> None:
    """BACKING_OFF members whose message waits out a backoff an hour long, FRESH queued."""
    rows = "\n".join(f"m{i},+3247{i:07d},sms,nl" for i in range(backing_off + fresh))
    store.import_members("N", "name,phone,channel,lang\n" + rows)
    alert(store)
    with store.engine.begin() as c:
        c.execute(update(Message).where(Message.id > fresh)
                  .values(state=MessageState.RETRY.value, not_before=now() + timedelta(hours=1)))


@pytest.mark.parametrize("what", ["claim", "idle poll", "sweep_withdrawn"])
def test_claim_cost_does_not_grow_with_the_retry_backlog(sqlite_url, tmp_path, what):
    from gatewayd.db import make_engine, migrate
    from gatewayd.store import Store
    from tests.conftest import FAST_POLICY
    costs = []
    for n in (200, 4000):
        url = f"sqlite:///{tmp_path}/backlog{n}.db"
        migrate(url)
        s = Store(make_engine(url), FAST_POLICY)
        s.add_network("N")
        _backlog(s, n, fresh=0 if what == "idle poll" else 10)
        s.claim("sms", "warm-up", "n")                      # the first claim also checks system messages
        fn = {"claim": lambda: s.claim("sms", "d1", "n"), "idle poll": lambda: s.claim("sms", "d1", "n"),
              "sweep_withdrawn": s.sweep_withdrawn}[what]
        costs.append(_vm_steps(s, fn))
        s.engine.dispose()
    # Twenty times the backlog: an index seek costs about the same; a scan costs twenty times more.
    assert costs[1] <= costs[0] * 1.5 + 20, f"{what}: {costs[0]} -> {costs[1]} VM steps (x100)"
