"""The callback line's desk (gatewayd/callback.py) over a real store: what a caller's keys write."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, update

from gatewayd.callback import CallbackDesk
from gatewayd.channels.base import KeyPress
from gatewayd.config import AsteriskConfig
from gatewayd.db import make_engine
from gatewayd.model import Message, MessageState
from gatewayd.store import AlertRequest, Store
from tests.conftest import FAST_POLICY

MEMBER = "+32470000001"


@pytest.fixture
def store(sqlite_url):
    s = Store(make_engine(sqlite_url), FAST_POLICY)
    s.add_network("N", zone="Zone Noord")
    s.add_member("N", MEMBER, channel="voice")
    yield s
    s.engine.dispose()


@pytest.mark.parametrize("caller_id", ["0470000001", "0032470000001", "+32 470 00 00 01"])
def test_a_1_from_a_caller_id_in_national_form_confirms_the_members_call(store, caller_id):
    # Belgian trunks often present the caller in national form; the desk recognises the member
    # by it (and reads the alerts), so the 1 the member then presses must confirm their call too,
    # not be thanked and dropped.
    now = datetime.now(timezone.utc)
    alert = store.enqueue_alert(AlertRequest(networks=("N",), category="urgent", text="Inbraak."),
                                now=now - timedelta(minutes=5)).alert_id
    with store.engine.begin() as c:
        c.execute(update(Message).where(Message.alert_id == alert).values(state=MessageState.VOICEMAIL.value))
    desk = CallbackDesk(store, AsteriskConfig())
    plan = desk.callback("asterisk", caller_id, now)
    assert plan.member and [i.alert_id for i in plan.items] == [alert]
    # what the voice channel hands over: the caller ID exactly as Asterisk gave it
    desk.key_pressed(KeyPress("asterisk", caller_id, "1", alert_id=alert, at=now))
    with store.engine.connect() as c:
        assert c.scalar(select(Message.state).where(Message.alert_id == alert)) == MessageState.ACKNOWLEDGED.value
