"""GDPR: export everything about a person, erase it keeping counts, purge after the retention period."""
from __future__ import annotations

import os
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from gatewayd.errors import NotFound
from gatewayd.model import AuditAction, InboundMessage, Member, Message, utcnow
from gatewayd.store import AlertRequest
from gatewayd.store.gdpr import erase_member, export_member, purge

NUMBER = "+32470123456"
OTHER = "+32470654321"

@pytest.fixture
def store(any_store):
    """Every test here runs on SQLite and, under make test, on PostgreSQL."""
    return any_store


@pytest.fixture
def alert_id(store) -> int:
    """Two members of one network, one alert to both, one message sent, a reply from the first."""
    store.add_network("BIN Noord")
    m = store.add_member("BIN Noord", "0470 12 34 56", "Anna Peeters")
    store.audit("cli", AuditAction.MEMBER_ADD, {"network": "BIN Noord", "member_id": m.id})
    store.add_member("BIN Noord", OTHER, "Bert")
    aid = store.enqueue_alert(AlertRequest(networks=("BIN Noord",), category="urgent",
                                           text="Verdachte wagen in de Kerkstraat")).alert_id
    with store.engine.begin() as c:
        c.execute(update(Message).where(Message.number == NUMBER).values(state="delivered", sent_at=utcnow()))
    store.record_inbound("sim1", NUMBER, "Ik zag hem ook", "report", utcnow(), m.id, aid)
    return aid


def test_export_holds_member_networks_messages_and_replies(store, alert_id):
    data = export_member(store, "0470/12.34.56")
    assert data["member"]["name"] == "Anna Peeters" and data["member"]["networks"] == ["BIN Noord"]
    assert [m["text"] for m in data["messages"]] == ["Verdachte wagen in de Kerkstraat"]
    assert [r["text"] for r in data["replies"]] == ["Ik zag hem ook"]
    assert [a["action"] for a in data["audit"]] == [AuditAction.MEMBER_ADD.value]


def test_export_holds_nothing_about_other_members(store, alert_id):
    assert OTHER not in str(export_member(store, NUMBER))


def test_export_of_an_unknown_number_is_not_found(store, alert_id):
    with pytest.raises(NotFound):
        export_member(store, "+32470999999")


def test_erase_removes_the_member_and_every_trace_of_the_number(store, alert_id):
    erase_member(store, NUMBER)
    with store.session() as s:
        assert s.scalar(select(Member).where(Member.phone == NUMBER)) is None
        assert s.scalars(select(Message.text).where(Message.number == NUMBER)).all() == []
        assert s.scalars(select(InboundMessage.text).where(InboundMessage.text.like("%zag%"))).all() == []


def test_erase_keeps_the_alert_counts(store, alert_id):
    before = store.alert_status(alert_id)["messages"]
    erase_member(store, NUMBER)
    assert store.alert_status(alert_id)["messages"] == before


def test_erase_cancels_messages_not_yet_sent(store, alert_id):
    erase_member(store, OTHER)
    assert store.alert_status(alert_id)["messages"] == {"delivered": 1, "cancelled": 1}


def test_erased_number_is_not_left_in_the_database_files(store, alert_id, sqlite_url):
    """Neither in free pages of the database nor in its write-ahead log, while connections stay open."""
    if store.engine.dialect.name != "sqlite":
        pytest.skip("about the SQLite file; PostgreSQL reclaims dead rows with VACUUM")
    erase_member(store, NUMBER)
    path = sqlite_url.removeprefix("sqlite:///")
    raw = b"".join(open(p, "rb").read() for p in (path, path + "-wal") if os.path.exists(p))
    for trace in (NUMBER.encode(), b"Anna Peeters", b"Ik zag hem ook"):
        assert trace not in raw, trace


def test_erase_of_an_unknown_number_is_not_found(store, alert_id):
    with pytest.raises(NotFound):
        erase_member(store, "+32470999999")


def test_purge_blanks_old_texts_and_numbers_and_keeps_counts(store, alert_id):
    before = store.alert_status(alert_id)["messages"]
    report = purge(store, days=30, now=utcnow() + timedelta(days=31))
    assert report.messages == 1 and report.replies == 1    # the queued message is not touched
    with store.engine.connect() as c:
        rows = c.execute(select(Message.state, Message.number, Message.text)).all()
    assert sorted(rows) == [("delivered", "", ""), ("queued", OTHER, "Verdachte wagen in de Kerkstraat")]
    assert store.alert_status(alert_id)["messages"] == before


def test_purge_leaves_records_younger_than_the_retention(store, alert_id):
    assert purge(store, days=30, now=utcnow() + timedelta(days=29)).messages == 0


def test_purge_with_zero_days_keeps_everything(store, alert_id):
    assert purge(store, days=0, now=utcnow() + timedelta(days=3650)).messages == 0


def test_erase_blanks_device_errors_that_quote_the_number(store, alert_id):
    from gatewayd.model import Attempt
    with store.engine.begin() as c:
        mid = c.scalar(select(Message.id).where(Message.number == NUMBER))
        c.execute(Attempt.__table__.insert().values(message_id=mid, device="sim1", node="n", started_at=utcnow(),
                                                    result="retry", error="+CMS ERROR 21 for 0470123456"))
    erase_member(store, NUMBER)
    with store.engine.connect() as c:
        assert c.scalars(select(Attempt.error)).all() == [""]
