"""Shared fixtures: a migrated database (SQLite by default, PostgreSQL on request)."""
from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy import create_engine, text

from gatewayd.channels.emulated import EmulatedChannel
from gatewayd.config import DispatchConfig, EmulatedConfig
from gatewayd.db import make_engine, migrate
from gatewayd.dispatch import Dispatcher
from gatewayd.store import AlertRequest, Store

FAST_POLICY = DispatchConfig(quiet_hours="", backoff_base=0.05, backoff_max=0.2, poll_interval=0.01)


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    url = f"sqlite:///{tmp_path}/gatewayd.db"
    migrate(url)
    return url


@pytest.fixture
def pg_url(pg_empty_url):
    """A fresh database in the PostgreSQL rig (scripts/pg-rig) with the schema, dropped afterwards."""
    migrate(pg_empty_url)
    return pg_empty_url


@pytest.fixture
def pg_empty_url():
    """A fresh, empty database in the PostgreSQL rig, dropped afterwards."""
    base = os.environ.get("GATEWAYD_TEST_PG_URL")
    if not base:
        pytest.skip("GATEWAYD_TEST_PG_URL not set (make test starts PostgreSQL)")
    name = f"gw_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    url = base.rsplit("/", 1)[0] + "/" + name
    yield url
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def store(sqlite_url) -> Store:
    s = Store(make_engine(sqlite_url), FAST_POLICY)
    yield s
    s.engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def any_store(request) -> Store:
    """The store on each supported backend: the state machine must not depend on it."""
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    s = Store(make_engine(url), FAST_POLICY)
    yield s
    s.engine.dispose()


def add_members(store: Store, network: str, n: int, start: int = 0, channel: str | None = None,
                lang: str = "nl") -> list[str]:
    """N members with distinct Belgian mobile numbers; returns the E.164 numbers."""
    numbers = []
    for i in range(start, start + n):
        m = store.add_member(network, f"+32470{i:06d}", f"member {i}", channel, lang)
        numbers.append(m.phone)
    return numbers


def send(store: Store, category: str = "urgent", **kw: object) -> int:
    """An alert to network "N"; its id."""
    return store.enqueue_alert(AlertRequest(networks=("N",), category=category, text="tekst", **kw)).alert_id


def sim(name: str, latency: float = 0.0) -> EmulatedChannel:
    """An emulated SMS device, fast enough that only the test's own limits count."""
    return EmulatedChannel(EmulatedConfig(name=name, latency=latency, rate_per_minute=60000))


def run_until_idle(store: Store, channels: list, quota=None, policy: DispatchConfig = FAST_POLICY,
                   timeout: float = 15) -> bool:
    """Dispatch with CHANNELS until nothing is left to send (or TIMEOUT), then stop."""
    d = Dispatcher(policy, store, channels, node="t", quota=quota)
    d.start()
    try:
        return d.wait_idle(timeout)
    finally:
        d.stop()
