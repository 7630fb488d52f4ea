"""Who and when first (issue 15): the sender and the time before the message, per language."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from gatewayd.heading import spoken_time, with_heading, written_time
from gatewayd.model import Message
from gatewayd.store import AlertRequest, Store
from tests.conftest import add_members

AT = datetime(2026, 12, 2, 13, 5, tzinfo=timezone.utc)      # 14:05 in Brussels
ON_THE_HOUR = datetime(2026, 7, 1, 12, 0, tzinfo=timezone.utc)   # 14:00 in Brussels (summer time)
TZ = "Europe/Brussels"


@pytest.mark.parametrize("lang, said", [("nl", "14 uur 5"), ("fr", "14 heures 5"), ("de", "14 Uhr 5"),
                                        ("en", "14 05")])
def test_time_is_read_the_way_the_language_says_it(lang, said):
    assert spoken_time(AT, lang, TZ) == said


@pytest.mark.parametrize("lang, said", [("nl", "14 uur"), ("fr", "14 heures"), ("de", "14 Uhr")])
def test_a_full_hour_is_said_without_minutes(lang, said):
    assert spoken_time(ON_THE_HOUR, lang, TZ) == said


@pytest.mark.parametrize("lang, written", [("nl", "14:05"), ("fr", "14h05"), ("en", "14:05")])
def test_sms_time_is_written_per_language(lang, written):
    assert written_time(AT, lang, TZ) == written


def test_call_starts_with_sender_and_spoken_time():
    assert with_heading("Inbraak.", "Politie zone Noord", AT, "nl", TZ, spoken=True) == \
        "Politie zone Noord, 14 uur 5. Inbraak."


def test_sms_starts_with_sender_and_written_time():
    assert with_heading("Inbraak.", "Politie zone Noord", AT, "nl", TZ, spoken=False) == \
        "Politie zone Noord 14:05: Inbraak."


@pytest.fixture
def heading_store(sqlite_url):
    from gatewayd.db import make_engine
    from tests.conftest import FAST_POLICY
    s = Store(make_engine(sqlite_url), replace(FAST_POLICY, sender_first=True, timezone=TZ))
    s.add_network("N", zone="Politie zone Noord")
    add_members(s, "N", 1, channel="sms+voice")
    yield s
    s.engine.dispose()


def test_queued_sms_and_call_carry_sender_and_time(heading_store):
    heading_store.enqueue_alert(AlertRequest(networks=("N",), category="urgent", text="Inbraak."), now=AT)
    with heading_store.session() as s:
        texts = dict(s.execute(select(Message.channel, Message.text)).all())
    assert texts == {"sms": "Politie zone Noord 14:05: Inbraak.", "voice": "Politie zone Noord, 14 uur 5. Inbraak."}


def test_without_sender_first_the_text_is_as_written(sqlite_url):
    from gatewayd.db import make_engine
    from tests.conftest import FAST_POLICY
    s = Store(make_engine(sqlite_url), FAST_POLICY)
    s.add_network("N", zone="Politie zone Noord")
    add_members(s, "N", 1)
    s.enqueue_alert(AlertRequest(networks=("N",), category="urgent", text="Inbraak."), now=AT)
    with s.session() as ses:
        assert ses.scalars(select(Message.text)).all() == ["Inbraak."]
    s.engine.dispose()
