"""The store keeps the README's promises (issue 10): separate budgets, opt-out final at every
step, one correction per alert, claims whose cost does not grow with the retry backlog."""
from __future__ import annotations

import threading
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import event, select, update

from gatewayd.channels.base import Outcome
from gatewayd.errors import InputError
from gatewayd.model import Alert, Attempt, Member, Message, MessageState
from gatewayd.store import AlertRequest
from tests.conftest import add_members


@pytest.fixture
def store(any_store):
    return any_store


@pytest.fixture
def net(store):
    store.add_network("N")
    return "N"


def now() -> datetime:
    return datetime.now(timezone.utc)


def alert(store, category="urgent", text="Verdachte persoon"):
    return store.enqueue_alert(AlertRequest(networks=("N",), category=category, text=text)).alert_id


def message(store, message_id=None) -> Message:
    with store.session() as s:
        q = select(Message).order_by(Message.id)
        if message_id is not None:
            q = q.where(Message.id == message_id)
        return s.scalars(q).first()


def claim_at(store, t, device="d1"):
    return store.claim("sms", device, "n", now=t)


# ---------------------------------------------------------------- 1. separate budgets
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
    a = alert(store)
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


# ---------------------------------------------------------------- 3. opt-out final at every step
def set_member(store, number, **values):
    """What the member page does when an admin makes a member inactive (a plain row update)."""
    with store.engine.begin() as c:
        c.execute(update(Member).where(Member.phone == number).values(**values))


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


def test_a_correction_skips_a_member_who_said_stop_after_the_original(store, net):
    nums = add_members(store, net, 2)
    a = alert(store)
    for _ in range(2):
        store.complete(store.claim("sms", "d1", "n"), "d1", Outcome.sent(reference=1))
    store.set_opt_out(nums[0], True)
    r = store.correct_alert(a, "Correctie")
    assert r.messages["sms"] == 1
    assert store.claim("sms", "d1", "n").delivery.number == nums[1]


# ---------------------------------------------------------------- 4. one correction per alert
def test_two_concurrent_corrections_one_wins(store, net):
    add_members(store, net, 20)
    for _ in range(3):
        a = alert(store)
        for _ in range(10):
            store.complete(store.claim("sms", "d1", "n"), "d1", Outcome.sent(reference=1))
        gate = threading.Barrier(2)
        results: list = []

        def correct(text):
            gate.wait(10)
            try:
                results.append(store.correct_alert(a, text).alert_id)
            except InputError as exc:
                results.append(exc)

        threads = [threading.Thread(target=correct, args=(f"Correctie {i}",)) for i in range(2)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(30)
        winners = [r for r in results if isinstance(r, int)]
        losers = [r for r in results if isinstance(r, InputError)]
        assert len(winners) == 1 and len(losers) == 1, results
        assert "already corrected" in str(losers[0])
        with store.session() as s:
            corrections = s.scalars(select(Alert.id).where(Alert.parent_id == a)).all()
            assert corrections == winners
            assert s.get(Alert, a).superseded_by == winners[0]
        # Finish everything before the next round.
        while (c := store.claim("sms", "d1", "n")) is not None:
            store.complete(c, "d1", Outcome.sent(reference=1))


def test_a_correction_of_a_corrected_alert_is_refused(store, net):
    add_members(store, net, 1)
    a = alert(store)
    first = store.correct_alert(a, "Correctie").alert_id
    with pytest.raises(InputError, match=f"already corrected by alert {first}"):
        store.correct_alert(a, "Nog een")


# ---------------------------------------------------------------- 5. claim cost and the retry backlog
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
