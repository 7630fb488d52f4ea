"""Fixtures for the police page: a migrated SQLite file per test, users of each role, a client."""
from __future__ import annotations

import re
import shutil

import pytest

from gatewayd.config import parse_config
from gatewayd.db import make_engine, migrate
from gatewayd.store import Store
from web import create_app

PASSWORD = "correct-horse-battery"
CSRF_RE = re.compile(r'name="csrf-token" content="([^"]+)"')


@pytest.fixture(scope="session")
def template_db(tmp_path_factory):
    """A migrated database holding the test world, copied for each test.

    Alembic and the Argon2 hashing of the users run once per session, not per test.
    """
    path = tmp_path_factory.mktemp("tpl") / "world.db"
    migrate(f"sqlite:///{path}")
    store = Store(make_engine(f"sqlite:///{path}"))
    store.seed_templates()          # what `gatewayd init-db` does after the migration
    populate(store)
    store.engine.dispose()          # last connection closed: the WAL is checkpointed into the file
    return path


def populate(store):
    """Two zones, three networks, members, and one user of each role."""
    store.add_network("Lindeknoppen", zone="Zone Noord")
    store.add_network("Kerkwijk", zone="Zone Noord")
    store.add_network("Zuidrand", zone="Zone Zuid")
    store.add_member("Lindeknoppen", "0470 12 34 56", "An Peeters", lang="nl")
    store.add_member("Lindeknoppen", "0471 22 33 44", "Luc Dubois", lang="fr")
    store.add_member("Kerkwijk", "0472 11 11 11", "Kim Janssens")
    store.add_member("Zuidrand", "0473 99 88 77", "Zoë Zuid")
    store.add_user("agent", PASSWORD, "police", zone="Zone Noord")
    store.add_user("coord", PASSWORD, "coordinator", networks=("Kerkwijk",))
    store.add_user("admin", PASSWORD, "admin")


def make_cfg(db_path, dispatch=None, modems=None, emulated=None, **web):
    """A test config; pages in English unless WEB says otherwise (assertions read English).

    DISPATCH adds [dispatch] keys; MODEMS / EMULATED replace the devices (default: emulated sim1).
    """
    web = {"default_language": "en", **web}
    raw = {"database": {"url": f"sqlite:///{db_path}"},
           "dispatch": {"quiet_hours": "", **(dispatch or {})},
           "emulated": [{"name": "sim1", "latency": 0.01}] if emulated is None else emulated,
           "web": {"secret_key": "test-secret", **web}}
    if modems:
        raw["modems"] = modems
    if not raw["emulated"]:
        del raw["emulated"]
    return parse_config(raw, "test.toml")


@pytest.fixture
def cfg(tmp_path, template_db):
    db = tmp_path / "gatewayd.db"
    shutil.copy(template_db, db)
    return make_cfg(db)


@pytest.fixture
def store(cfg):
    s = Store(make_engine(cfg.database.url), cfg.dispatch)
    yield s
    s.engine.dispose()


@pytest.fixture
def world(store):
    """The store over this test's copy of the world (see `populate`)."""
    return store


@pytest.fixture
def app(cfg, world):
    app = create_app(cfg, world)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def client(app):
    return app.test_client()


def user_id(store, name):
    from sqlalchemy import select

    from gatewayd.model import User
    with store.session() as s:
        return s.scalar(select(User.id).where(User.username == name))


def login_as(client, store, name):
    """Log in without the password round-trip (argon2 verify is tested in test_auth)."""
    import time

    from gatewayd.model import User
    uid = user_id(store, name)
    with store.session() as s:
        version = s.get(User, uid).session_version
    with client.session_transaction() as sess:
        sess["user_id"], sess["ver"], sess["since"] = uid, version, int(time.time())
    return client


def csrf_token(client, path="/"):
    html = client.get(path).get_data(as_text=True)
    m = CSRF_RE.search(html)
    assert m, f"no CSRF token on {path}"
    return m.group(1)


def network_id(store, name):
    from sqlalchemy import select

    from gatewayd.model import Network
    with store.session() as s:
        return s.scalar(select(Network.id).where(Network.name == name))


@pytest.fixture
def police(client, world):
    return login_as(client, world, "agent")


@pytest.fixture
def coordinator(client, world):
    return login_as(client, world, "coord")


@pytest.fixture
def admin(client, world):
    return login_as(client, world, "admin")


# Scenario fixtures (an app per config, an alert waiting for approval, one half sent); imported last:
# scenarios.py builds on the helpers above.
from .scenarios import approval, half_sent, make  # noqa: E402, F401, I001
