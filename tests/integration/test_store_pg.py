"""PostgreSQL: several gateways share one queue without claiming a message twice."""
from __future__ import annotations

import threading
from collections import Counter

import pytest

from gatewayd.channels.base import Outcome
from gatewayd.db import make_engine
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
