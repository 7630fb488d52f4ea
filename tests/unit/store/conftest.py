"""What the store's tests share: the store on each backend, one network, and a few short helpers."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from gatewayd.model import Message
from gatewayd.store import AlertRequest, EnqueueResult, Store


@pytest.fixture
def store(any_store: Store) -> Store:
    return any_store


@pytest.fixture
def net(store: Store) -> str:
    store.add_network("N", zone="Leuven")
    return "N"


def now() -> datetime:
    return datetime.now(timezone.utc)


NOW = now


def alert(store: Store, network: str = "N", category: str = "urgent", text: str = "Verdachte persoon",
          **kw: object) -> EnqueueResult:
    return store.enqueue_alert(AlertRequest(networks=(network,), category=category, text=text, **kw))


def messages(store: Store, **where: object) -> list[Message]:
    with store.session() as s:
        q = select(Message)
        for k, v in where.items():
            q = q.where(getattr(Message, k) == v)
        return list(s.scalars(q.order_by(Message.id)))
