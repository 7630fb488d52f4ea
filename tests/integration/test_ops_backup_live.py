"""Backups taken while the dispatcher sends thousands of messages are intact, consistent and restorable."""
from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from gatewayd.backup import backup_file, restore_file
from gatewayd.channels.emulated import EmulatedChannel
from gatewayd.config import DispatchConfig, EmulatedConfig
from gatewayd.db import make_engine, migrate
from gatewayd.dispatch import Dispatcher
from gatewayd.store import AlertRequest, Store

pytestmark = pytest.mark.timeout(300)

N = 3000
POLICY = DispatchConfig(quiet_hours="", backoff_base=0.05, backoff_max=0.2, poll_interval=0.01)
DONE = ("sent", "delivered")


def _dispatcher(store: Store) -> Dispatcher:
    ch = EmulatedChannel(EmulatedConfig(name="sim1", latency=0.0, rate_per_minute=1e6, capacity=2))
    return Dispatcher(POLICY, store, [ch], "ops-test")


def _states(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as c:
        return dict(c.execute("SELECT state, count(*) FROM message GROUP BY state").fetchall())


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """Dispatch N messages and take a backup every 0.2 s meanwhile; yields (url, db, backups)."""
    tmp = tmp_path_factory.mktemp("live")
    db = tmp / "gatewayd.db"
    url = f"sqlite:///{db}"
    migrate(url)
    store = Store(make_engine(url), POLICY)
    store.add_network("N")
    csv = "name,phone\n" + "".join(f"m{i},+32470{i:06d}\n" for i in range(N))
    assert store.import_members("N", csv)[0] == N
    store.enqueue_alert(AlertRequest(networks=("N",), category="urgent", text="test"))
    dispatcher = _dispatcher(store)
    backups = []
    dispatcher.start()
    try:
        deadline = time.monotonic() + 240
        while store.has_pending() and time.monotonic() < deadline:
            time.sleep(0.2)
            backups.append(backup_file(db, tmp / f"backup-{len(backups):03d}.db").path)
    finally:
        dispatcher.stop()
    store.engine.dispose()
    assert not store.has_pending(), "dispatch did not finish in time"
    yield url, db, backups


def _done(path: Path) -> int:
    return sum(n for s, n in _states(path).items() if s in DONE)


def test_backups_were_taken_mid_dispatch(live):
    _url, _db, backups = live
    assert any(0 < _done(b) < N for b in backups), [_done(b) for b in backups]


@pytest.mark.parametrize("check", ["integrity", "rows", "standalone"])
def test_every_backup_is_an_intact_standalone_database(live, check):
    for b in live[2]:
        with sqlite3.connect(b) as c:
            if check == "integrity":
                assert c.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            elif check == "rows":
                assert c.execute("SELECT count(*) FROM message").fetchone()[0] == N
            else:
                assert c.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert not Path(str(b) + "-wal").exists()


def test_every_backup_is_one_transactional_snapshot(live):
    """A message recorded as sent always has its finished attempt: both are written in one transaction."""
    for b in live[2]:
        with sqlite3.connect(b) as c:
            torn = c.execute("SELECT count(*) FROM message m WHERE m.state IN ('sent', 'delivered') AND NOT EXISTS "
                             "(SELECT 1 FROM attempt a WHERE a.message_id = m.id AND a.result IS NOT NULL)"
                             ).fetchone()[0]
        assert torn == 0, b


def test_backups_only_move_forward(live):
    done = [_done(b) for b in live[2]]
    assert done == sorted(done)


def test_restored_mid_dispatch_backup_resumes_and_finishes(live, tmp_path):
    url, db, backups = live
    middle = next(b for b in backups if 0 < _done(b) < N)
    info = restore_file(db, middle, url)
    assert _states(db) == _states(middle)
    assert info.previous is not None and _done(info.previous) == N

    store = Store(make_engine(url), POLICY)
    dispatcher = _dispatcher(store)
    dispatcher.start()
    try:
        assert dispatcher.wait_idle(240)
    finally:
        dispatcher.stop()
        store.engine.dispose()
    assert _done(db) == N
