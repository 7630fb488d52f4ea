"""Node ids, leases, per-node devices and the keeper's view of nodes (gatewayd/nodes.py)."""
from __future__ import annotations

import json
import subprocess
from datetime import timedelta

import pytest
from sqlalchemy import insert, select, update

from gatewayd.channels.base import DeviceHealth, DeviceState
from gatewayd.config import KeeperConfig, parse_config
from gatewayd.keeper import Keeper
from gatewayd.model import AuditAction, AuditEntry, Message, MessageState, Node, utcnow
from gatewayd.nodes import NodeError, ensure_node_id, node_id_path, overview, take_over_silent
from gatewayd.store import AlertRequest
from tests.conftest import add_members
from tests.fixtures.daemon import GATEWAYD


def test_a_node_id_is_made_once_and_kept(tmp_path):
    path = tmp_path / "state" / "node-id"
    first = ensure_node_id(path)
    assert ensure_node_id(path) == first and path.read_text().strip() == first
    assert ensure_node_id(tmp_path / "other") != first


def test_a_damaged_node_id_file_is_one_clear_error(tmp_path):
    path = tmp_path / "node-id"
    path.write_text("hostname-copy\n")
    with pytest.raises(NodeError, match=r"node-id: 'hostname-copy' is not a node id; delete the file"):
        ensure_node_id(path)


def test_the_node_id_lives_beside_the_sqlite_database_unless_configured(tmp_path):
    cfg = parse_config({"database": {"url": f"sqlite:///{tmp_path}/db/gw.db"}})
    assert node_id_path(cfg) == tmp_path / "db" / "gw.db.node-id"
    cfg = parse_config({"database": {"url": "postgresql+psycopg://u@h/db"},
                        "dispatch": {"node_id_file": str(tmp_path / "id")}})
    assert node_id_path(cfg) == tmp_path / "id"


def test_init_db_registers_the_node_and_status_shows_every_node_with_its_devices(tmp_path):
    conf = tmp_path / "gw.toml"
    conf.write_text(f'[database]\nurl = "sqlite:///{tmp_path}/gw.db"\n[dispatch]\nnode = "town hall"\n')
    run = lambda *a: subprocess.run([*GATEWAYD, "-c", str(conf), *a], capture_output=True, text=True,  # noqa: E731
                                    check=True, timeout=60)
    run("init-db")
    me = (tmp_path / "gw.db.node-id").read_text().strip()
    from gatewayd.db import make_engine
    from gatewayd.store import Store
    store = Store(make_engine(f"sqlite:///{tmp_path}/gw.db"))
    store.record_device("modem1", "sms", me, DeviceHealth(DeviceState.UP))
    store.record_device("modem1", "sms", "other-node", DeviceHealth(DeviceState.DOWN, last_error="unplugged"))
    report = json.loads(run("status", "--json").stdout)
    assert report["node_id"] == me
    nodes = {n["id"]: n for n in report["nodes"]}
    assert nodes[me]["name"] == "town hall" and nodes[me]["state"] == "never_ran"
    assert [d["state"] for d in nodes[me]["devices"]] == ["up"]
    assert [d["state"] for d in nodes["other-node"]["devices"]] == ["down"]
    assert "node town hall" in run("status").stdout


def test_two_nodes_with_a_device_of_the_same_name_keep_their_own_state(store):
    store.record_device("modem1", "sms", "node-a", DeviceHealth(DeviceState.UP, signal=20), sent=3)
    store.record_device("modem1", "sms", "node-b", DeviceHealth(DeviceState.DOWN, last_error="no SIM"), sent=1)
    got = {(d["node"], d["name"]): (d["state"], d["sent_count"]) for d in store.devices()}
    assert got == {("node-a", "modem1"): ("up", 3), ("node-b", "modem1"): ("down", 1)}


def test_a_node_forgetting_a_device_it_no_longer_has_leaves_another_node_s_device_of_that_name(store):
    store.record_device("modem1", "sms", "node-a", DeviceHealth(DeviceState.UP))
    store.record_device("modem2", "sms", "node-a", DeviceHealth(DeviceState.UP))
    store.record_device("modem2", "sms", "node-b", DeviceHealth(DeviceState.UP))
    assert store.forget_devices("node-a", {"modem1"}) == ["modem2"]
    assert sorted((d["node"], d["name"]) for d in store.devices()) == [("node-a", "modem1"), ("node-b", "modem2")]


def _node(store, node_id: str, silent_for: float, lease: float = 10.0) -> None:
    with store.engine.begin() as c:
        c.execute(insert(Node).values(id=node_id, name=node_id, heartbeat_at=utcnow() - timedelta(seconds=silent_for),
                                      started_at=utcnow() - timedelta(hours=1), lease_seconds=lease))


def _claim_on(store, node: str, n: int = 1) -> list[int]:
    return [store.claim("sms", "modem1", node).message_id for _ in range(n)]


@pytest.fixture
def queued(store):
    store.add_network("N")
    add_members(store, "N", 6)
    store.enqueue_alert(AlertRequest(networks=("N",), category="urgent", text="x"))
    return store


def test_a_silent_node_s_sends_are_taken_over_and_a_live_node_s_are_left_alone(queued):
    store = queued
    _node(store, "live", silent_for=2)
    _node(store, "dead", silent_for=60)
    _node(store, "me", silent_for=0)
    live, dead = _claim_on(store, "live", 2), _claim_on(store, "dead", 2)
    done = take_over_silent(store, "me")
    assert [(t.node, t.report.resent) for t in done] == [("dead", 2)]
    with store.engine.connect() as c:
        state = dict(c.execute(select(Message.id, Message.state)).all())
        flagged = set(c.scalars(select(Message.id).where(Message.possible_duplicate)))
        audit = c.execute(select(AuditEntry.actor, AuditEntry.action, AuditEntry.detail)).all()
    assert {state[m] for m in live} == {MessageState.SENDING.value}
    assert {state[m] for m in dead} == {MessageState.QUEUED.value} and flagged == set(dead)
    assert audit == [("node:me", AuditAction.NODE_TAKEOVER.value,
                      {"node": "dead", "silent_seconds": pytest.approx(60, abs=5), "resent": 2, "failed": 0,
                       "cancelled": 0, "policy": "resend"})]
    assert take_over_silent(store, "me") == []      # once


def test_the_keeper_tells_when_a_node_goes_silent_once_through_the_first_live_node(queued):
    store = queued
    _node(store, "a-live", silent_for=1)
    _node(store, "b-live", silent_for=1)
    _node(store, "c-dead", silent_for=120)
    cfg = KeeperConfig(email_to="ops@example.org", smtp_host="127.0.0.1")
    problems = Keeper(cfg, store, "x", node_id="a-live").problems(utcnow())
    assert "silent" in problems["node-silent:c-dead"].summary
    assert "node-silent:c-dead" not in Keeper(cfg, store, "y", node_id="b-live").problems(utcnow())
    with store.engine.begin() as c:     # it comes back
        c.execute(update(Node).where(Node.id == "c-dead").values(heartbeat_at=utcnow()))
    assert "node-silent:c-dead" not in Keeper(cfg, store, "x", node_id="a-live").problems(utcnow())


def test_the_keeper_tells_of_messages_stuck_in_sending_under_a_node_nobody_runs_as(queued):
    store = queued
    _claim_on(store, "old-hostname")
    cfg = KeeperConfig(email_to="ops@example.org", smtp_host="127.0.0.1", queue_stuck_minutes=1)
    later = utcnow() + timedelta(minutes=5)
    problems = Keeper(cfg, store, "x", node_id="me").problems(later)
    assert "old-hostname" in problems["sending-orphaned"].summary


def test_overview_marks_nodes_by_their_heartbeat(store):
    _node(store, "up", silent_for=1)
    _node(store, "gone", silent_for=30)
    with store.engine.begin() as c:
        c.execute(insert(Node).values(id="new", name="new"))
        c.execute(insert(Node).values(id="off", name="off", heartbeat_at=utcnow() - timedelta(seconds=60),
                                      stopped_at=utcnow() - timedelta(seconds=59), lease_seconds=10))
    assert {n["id"]: n["state"] for n in overview(store, [])} == {
        "up": "running", "gone": "silent", "new": "never_ran", "off": "stopped"}


def test_a_claim_taken_over_while_the_node_was_frozen_is_not_sent_after_it_resumes(pg_url, tmp_path):
    # Review 10/14 (SIGSTOP): node A claims, is frozen before it sends, its lease runs out, node B
    # takes the message over (resend once, possible_duplicate); A resumes and its lease thread renews
    # first, so held() is true again. A must still not send the taken-over message.
    # The freeze is played deterministically at the one seam the worker offers between its claim and
    # its send: the dispatcher's clock, called once after the lease check and before the send.
    import threading

    from sqlalchemy import text

    from gatewayd.channels.emulated import EmulatedChannel
    from gatewayd.config import EmulatedConfig
    from gatewayd.db import make_engine
    from gatewayd.dispatch import Dispatcher
    from gatewayd.nodes import LeaseTiming, NodeIdentity, NodeLease
    from gatewayd.store import Store
    from tests.conftest import FAST_POLICY

    store = Store(make_engine(pg_url), FAST_POLICY)
    store.add_network("N")
    add_members(store, "N", 1)
    a = NodeLease(store, NodeIdentity("node-a", "a", tmp_path / "a"), LeaseTiming(1.0, 1.0))
    a.acquire()
    frozen = threading.Event()

    def clock():
        now = utcnow()
        if threading.current_thread().name.startswith("worker-") and not frozen.is_set():
            with store.engine.connect() as c:
                claimed = c.scalar(text("SELECT count(*) FROM message WHERE state = 'sending' AND node = 'node-a'"))
            if claimed:
                frozen.set()
                with store.engine.begin() as c:      # A is silent past its lease ...
                    c.execute(text("UPDATE node SET heartbeat_at = now() - interval '1 hour' WHERE id = 'node-a'"))
                assert [t.node for t in take_over_silent(store, "node-b")] == ["node-a"]   # ... B takes over
                assert store.claim("sms", "sim1", "node-b") is not None                      # and sends it
                a.beat()                             # A resumes; its lease thread renews first
                assert a.held()
        return now

    sim = EmulatedChannel(EmulatedConfig(name="sim1", latency=0.0, rate_per_minute=60000.0), seed=1)
    d = Dispatcher(FAST_POLICY, store, [sim], node="node-a", clock=clock, lease=a)
    store.enqueue_alert(AlertRequest(networks=("N",), category="urgent", text="x"))
    d.start()
    try:
        deadline = utcnow() + timedelta(seconds=30)
        while not frozen.is_set() and utcnow() < deadline:
            frozen.wait(0.05)
        assert frozen.is_set(), "node A never claimed the message"
        d.stop(timeout=10)
    finally:
        d.stop(timeout=10)
        a.stop()
    with store.engine.connect() as c:
        row = c.execute(select(Message.state, Message.node, Message.possible_duplicate)).one()
    assert sim.sent == [], "A sent a message B had taken over"
    # B's to send (resend once, flagged); A left it alone.
    assert (row.state, row.node, row.possible_duplicate) == (MessageState.SENDING.value, "node-b", True)
    store.engine.dispose()


def _silent_node_with_a_claim(pg_url):
    from gatewayd.db import make_engine
    from gatewayd.store import Store
    from tests.conftest import FAST_POLICY

    store = Store(make_engine(pg_url), FAST_POLICY)
    store.add_network("N")
    add_members(store, "N", 2)
    store.enqueue_alert(AlertRequest(networks=("N",), category="urgent", text="x"))
    _node(store, "dead", silent_for=60)
    _node(store, "me", silent_for=0)
    return store, _claim_on(store, "dead", 1)[0]


def test_a_takeover_blocked_by_a_row_lock_waits_one_beat_and_tries_again(pg_url):
    # A silent node's message row locked by a transaction that never ends (the node froze inside it):
    # the takeover runs on the heartbeat thread, so it must not wait on that lock for ever.
    import time

    store, message = _silent_node_with_a_claim(pg_url)
    with store.engine.connect() as frozen:
        frozen.execute(update(Message).where(Message.id == message).values(reason="recording an outcome"))
        started = time.monotonic()
        assert take_over_silent(store, "me", lock_wait=0.2) == []
        assert time.monotonic() - started < 10
        frozen.rollback()
    assert [t.node for t in take_over_silent(store, "me", lock_wait=0.2)] == ["dead"]


@pytest.mark.parametrize("frozen_in", ["an outcome", "a heartbeat"])
def test_the_daemon_s_sessions_end_when_idle_inside_a_transaction_past_the_fence(pg_url, frozen_in):
    # The server, not the frozen process, ends the transaction: its work is rolled back and its row
    # locks go, so the takeover finds them free. Frozen mid-heartbeat, the node's own row was locked,
    # and the takeover skips a locked node row (another taker is at it): it never came.
    import time

    from sqlalchemy.exc import DBAPIError

    from gatewayd.db import make_engine
    from gatewayd.nodes import LeaseTiming

    store, message = _silent_node_with_a_claim(pg_url)
    engine = make_engine(pg_url, LeaseTiming(heartbeat=0.1, longest_send=1.0).idle_in_transaction)
    with engine.connect() as frozen:
        if frozen_in == "an outcome":
            frozen.execute(update(Message).where(Message.id == message).values(reason="recording an outcome"))
        else:
            frozen.execute(update(Node).where(Node.id == "dead").values(lease_seconds=Node.lease_seconds))
        time.sleep(1.0)                       # frozen well past the fence (0.3 s)
        assert [t.node for t in take_over_silent(store, "me", lock_wait=5.0)] == ["dead"]
        with pytest.raises(DBAPIError):
            frozen.commit()
    with store.engine.connect() as c:
        assert c.scalar(select(Message.reason).where(Message.id == message)) != "recording an outcome"
    engine.dispose()


def test_the_daemon_s_session_bound_keeps_the_options_the_database_url_gives(pg_url):
    # `?options=-c ...` in [database].url (a search_path, a statement_timeout) is the operator's;
    # the daemon's idle-in-transaction bound is added to it, never put in its place.
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from gatewayd.db import make_engine

    url = make_url(pg_url).update_query_dict({"options": "-c statement_timeout=4321"})
    engine = make_engine(url.render_as_string(hide_password=False), 1.5)
    with engine.connect() as c:
        assert c.scalar(text("SHOW statement_timeout")) == "4321ms"
        assert c.scalar(text("SHOW idle_in_transaction_session_timeout")) == "1500ms"
    engine.dispose()
