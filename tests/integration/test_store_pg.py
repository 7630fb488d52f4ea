"""PostgreSQL: several gateways share one queue without claiming a message twice."""
from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
from sqlalchemy import func, insert, select, text

from gatewayd.channels.base import Outcome
from gatewayd.db import make_engine
from gatewayd.model import AlertTemplate
from gatewayd.store import AlertRequest, Store
from tests.conftest import FAST_POLICY, add_members

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_store(pg_url):
    s = Store(make_engine(pg_url), FAST_POLICY)
    yield s
    s.engine.dispose()


def test_enqueue_and_claim_on_postgres(pg_store):
    pg_store.add_network("N")
    add_members(pg_store, "N", 3)
    a = pg_store.enqueue_alert(AlertRequest(networks=("N",), category="urgent", text="x")).alert_id
    c = pg_store.claim("sms", "d1", "gw1")
    pg_store.complete(c, "d1", Outcome.sent(reference=3))
    assert pg_store.alert_status(a)["messages"] == {"queued": 2, "sent": 1}


def test_two_gateways_never_claim_the_same_message(pg_url):
    stores = [Store(make_engine(pg_url), FAST_POLICY) for _ in range(2)]
    stores[0].add_network("N")
    add_members(stores[0], "N", 200)
    stores[0].enqueue_alert(AlertRequest(networks=("N",), category="urgent", text="x"))
    claimed: Counter = Counter()
    lock = threading.Lock()

    def drain(store, node):
        while (c := store.claim("sms", f"{node}-modem", node)) is not None:
            with lock:
                claimed[c.message_id] += 1
            store.complete(c, f"{node}-modem", Outcome.sent(reference=1))

    threads = [threading.Thread(target=drain, args=(stores[i % 2], f"gw{i}")) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(claimed) == 200 and max(claimed.values()) == 1
    for s in stores:
        s.engine.dispose()


def test_a_second_nodes_init_db_meeting_the_first_ones_templates_mid_way_is_no_error(pg_url):
    """Every gateway of a shared queue runs `gatewayd init-db` (README), which seeds the templates
    since issue 13. The one whose seeding meets rows another node is writing at that moment must
    leave them be, not stop with a duplicate-key traceback (the install script would fail there)."""
    first, second = Store(make_engine(pg_url)), Store(make_engine(pg_url))
    outcome: dict[str, object] = {}

    def seed() -> None:
        try:
            outcome["seeded"] = second.seed_templates()
        except Exception as exc:      # the test reports what escaped
            outcome["error"] = exc

    with first.engine.connect() as c:
        tx = c.begin()                # the first node's seeding, not committed yet
        c.execute(insert(AlertTemplate).values(key="suspicious_persons", title="Verdachte personen",
                                               category="urgent", texts={"nl": "x"}, position=0,
                                               updated_by="system"))
        worker = threading.Thread(target=seed)
        worker.start()
        deadline = time.monotonic() + 30
        while not _waits_for_a_lock(first) and worker.is_alive():
            assert time.monotonic() < deadline, "the second seeding never reached the first one's row"
            time.sleep(0.05)
        tx.commit()
    worker.join(30)
    assert outcome == {"seeded": False}
    with first.engine.connect() as c:
        assert c.scalar(select(func.count()).select_from(AlertTemplate)) == 1
    first.engine.dispose()
    second.engine.dispose()


def _waits_for_a_lock(store: Store) -> bool:
    with store.engine.connect() as c:
        return bool(c.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                  "AND wait_event_type = 'Lock'")))
