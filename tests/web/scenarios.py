"""Scenarios the page tests share (fixtures re-exported by conftest.py): an app per config over a copy
of the test world, sends through the page, the dispatcher's claim/complete, an alert waiting for
approval, an alert half sent."""
from __future__ import annotations

import shutil

import pytest
from sqlalchemy import select

from gatewayd.channels.base import Outcome
from gatewayd.db import make_engine
from gatewayd.model import Alert, Message
from gatewayd.store import Store
from web import create_app

from .conftest import PASSWORD, csrf_token, login_as, make_cfg
from .test_alerts import compose_form, confirm_token

# One modem whose SIM may send one segment a day: two members never fit.
TIGHT_SIM = [{"name": "modem1", "port": "/dev/null", "quota_per_day": 1}]


def send(client, store, **kw) -> int:
    form = compose_form(client, store, **kw)
    token = confirm_token(client.post("/alerts/confirm", data=form).get_data(as_text=True))
    resp = client.post("/alerts/send", data={**form, "confirm_token": token})
    assert resp.status_code == 302, resp.get_data(as_text=True)[:500]
    return int(resp.headers["Location"].rsplit("/", 1)[1])


def deliver(store, device="sim1", now=None, segments=1):
    """The dispatcher's two steps for one message: claim it, record it sent."""
    claimed = store.claim("sms", device, "test", now=now)
    assert claimed is not None
    store.complete(claimed, device, Outcome.sent(segments=segments), now=now)
    return claimed


def is_drill(store, alert_id) -> bool:
    with store.session() as s:
        return s.get(Alert, alert_id).drill


def correct(c, original, text="Correctie: het was de Kerkstraat"):
    form = {"csrf_token": csrf_token(c), "correct_id": str(original), "text_nl": text}
    token = confirm_token(c.post("/alerts/confirm", data=form).get_data(as_text=True))
    resp = c.post("/alerts/send", data={**form, "confirm_token": token})
    return int(resp.headers["Location"].rsplit("/", 1)[1])


@pytest.fixture
def make(tmp_path, template_db):
    """make(**cfg) -> (client, store) over a fresh copy of the test world with that config."""
    made = []

    def _make(**cfg_kw):
        db = tmp_path / f"w{len(made)}.db"
        shutil.copy(template_db, db)
        cfg = make_cfg(db, **cfg_kw)
        store = Store(make_engine(cfg.database.url), cfg.dispatch)
        made.append(store)
        app = create_app(cfg, store)
        app.config["TESTING"] = True
        return app.test_client(), store

    yield _make
    for s in made:
        s.engine.dispose()


@pytest.fixture
def approval(make):
    c, store = make(dispatch={"approval_categories": ["urgent"]})
    store.add_user("agent2", PASSWORD, "police", zone="Zone Noord")
    login_as(c, store, "agent")
    return c, store, send(c, store)


@pytest.fixture
def half_sent(make):
    """An alert to 3 members: one sent, one in flight (sending), one still queued."""
    c, store = make()
    store.add_member("Lindeknoppen", "0474 55 66 77", "Els Claes")
    login_as(c, store, "agent")
    aid = send(c, store)
    with store.session() as s:
        numbers = list(s.scalars(select(Message.number).where(Message.alert_id == aid).order_by(Message.id)))
    deliver(store)                                           # first: sent
    assert store.claim("sms", "sim1", "test") is not None    # second: in flight
    return c, store, aid, numbers
