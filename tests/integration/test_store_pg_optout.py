"""PostgreSQL: a STOP and an alert being queued for that member, in both orders.

Each test holds one transaction at a chosen point (through SQLAlchemy's engine
events, i.e. in the driver layer, not in our code) while the other runs, then
lets it go. Whatever the order, the member who said STOP has no queued message.
"""
from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import event, select

from gatewayd.db import make_engine
from gatewayd.model import Member, Message, MessageState
from gatewayd.store import AlertRequest, Store
from tests.conftest import FAST_POLICY, add_members

pytestmark = pytest.mark.postgres


class Hold:
    """Stops the thread named THREAD at the first statement (or commit) matching WHEN until released."""

    def __init__(self, engine, thread: str, when):
        self.reached, self.release = threading.Event(), threading.Event()
        self.thread, self.when = thread, when
        self._done = False
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine, "commit", self._commit)

    def _pause(self):
        self._done = True
        self.reached.set()
        assert self.release.wait(30), "held transaction was never released"

    def _statement(self, conn, cursor, statement, params, context, executemany):
        if not self._done and threading.current_thread().name == self.thread and self.when(statement):
            self._pause()

    def _commit(self, conn):
        if not self._done and threading.current_thread().name == self.thread and self.when("COMMIT"):
            self._pause()


@pytest.fixture
def pg_store(pg_url):
    s = Store(make_engine(pg_url), FAST_POLICY)
    s.add_network("N")
    yield s
    s.engine.dispose()


def queued_for(store, number) -> list[str]:
    with store.session() as s:
        return list(s.scalars(select(Message.state).where(Message.number == number)))


def run(name, fn, out):
    def target():
        try:
            out[name] = fn()
        except Exception as exc:     # reported by the assertions below
            out[name] = exc
    t = threading.Thread(target=target, name=name)
    t.start()
    return t


def test_stop_while_the_alert_is_being_queued(pg_store):
    """The alert has read its recipients and is about to write their messages when the STOP comes."""
    nums = add_members(pg_store, "N", 5)
    hold = Hold(pg_store.engine, "enqueue", lambda sql: sql.startswith("INSERT INTO message"))
    out: dict = {}
    enqueue = run("enqueue", lambda: pg_store.enqueue_alert(
        AlertRequest(networks=("N",), category="urgent", text="x")), out)
    assert hold.reached.wait(30)
    stop = run("stop", lambda: pg_store.set_opt_out(nums[2], True), out)
    time.sleep(0.5)                          # give the STOP every chance to commit first
    hold.release.set()
    enqueue.join(30)
    stop.join(30)
    assert not isinstance(out["enqueue"], Exception) and not isinstance(out["stop"], Exception), out
    with pg_store.session() as s:
        assert s.scalar(select(Member.opted_out).where(Member.phone == nums[2])) is True
    assert MessageState.QUEUED.value not in queued_for(pg_store, nums[2])
    assert all(queued_for(pg_store, n) == [MessageState.QUEUED.value] for n in nums if n != nums[2])


def test_alert_queued_while_the_stop_commits(pg_store):
    """The STOP has written the member and is about to commit when the alert starts queueing."""
    nums = add_members(pg_store, "N", 5)
    hold = Hold(pg_store.engine, "stop", lambda sql: sql == "COMMIT")
    out: dict = {}
    stop = run("stop", lambda: pg_store.set_opt_out(nums[2], True), out)
    assert hold.reached.wait(30)
    enqueue = run("enqueue", lambda: pg_store.enqueue_alert(
        AlertRequest(networks=("N",), category="urgent", text="x")), out)
    time.sleep(0.5)                          # give the alert every chance to read the member first
    hold.release.set()
    stop.join(30)
    enqueue.join(30)
    assert not isinstance(out["enqueue"], Exception) and not isinstance(out["stop"], Exception), out
    assert MessageState.QUEUED.value not in queued_for(pg_store, nums[2])
    assert out["enqueue"].messages["sms"] == 4 and out["enqueue"].skipped == {"opted out": 1}
