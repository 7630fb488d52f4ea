"""Replies: STOP/START keywords in nl/fr/de/en, acknowledgements, reports for the inbox."""
from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from gatewayd.channels.base import InboundText, Outcome
from gatewayd.inbound import ReplyKind, classify, handle_reply
from gatewayd.model import InboundMessage, Message
from gatewayd.store import SYSTEM_CHECK_PERIOD, AlertRequest


@pytest.mark.parametrize("text,kind", [
    ("STOP", ReplyKind.STOP), (" stop ", ReplyKind.STOP), ("Uit", ReplyKind.STOP), ("ARRÊT", ReplyKind.STOP),
    ("arret", ReplyKind.STOP), ("Stopp", ReplyKind.STOP), ("START", ReplyKind.START),
    ("ok", ReplyKind.ACK), ("1", ReplyKind.ACK), ("Ja!", ReplyKind.ACK), ("oui", ReplyKind.ACK),
    ("Ik zie de man nu aan de bakker", ReplyKind.REPORT), ("stop met dat lawaai", ReplyKind.REPORT),
])
def test_classify(text, kind):
    assert classify(text) is kind


@pytest.fixture
def member(store):
    store.add_network("N")
    return store.add_member("N", "0470123456", "An", lang="fr")


def sent_alert(store):
    a = store.enqueue_alert(AlertRequest(networks=("N",), category="urgent", text="x")).alert_id
    c = store.claim("sms", "sim1", "n")
    store.complete(c, "sim1", Outcome.sent(reference=1))
    return a, c.message_id


def inbox(store):
    with store.session() as s:
        return list(s.scalars(select(InboundMessage).order_by(InboundMessage.id)))


def test_stop_opts_out_and_confirms_in_the_members_language(store, member):
    assert handle_reply(store, InboundText("sim1", "0470123456", "Arrêt")) is ReplyKind.STOP
    assert store.member_by_number("+32470123456").opted_out
    time.sleep(SYSTEM_CHECK_PERIOD)
    c = store.claim("sms", "sim1", "n")
    assert c.delivery.number == "+32470123456" and "ne recevrez plus" in c.delivery.text


def test_start_opts_back_in(store, member):
    handle_reply(store, InboundText("sim1", "+32470123456", "STOP"))
    handle_reply(store, InboundText("sim1", "+32470123456", "start"))
    assert not store.member_by_number("+32470123456").opted_out


def test_ok_acknowledges_the_latest_alert_message(store, member):
    _, message_id = sent_alert(store)
    assert handle_reply(store, InboundText("sim1", "+32470123456", "OK")) is ReplyKind.ACK
    with store.session() as s:
        assert s.get(Message, message_id).state == "acknowledged"


def test_other_text_goes_to_the_inbox_linked_to_the_alert(store, member):
    alert_id, _ = sent_alert(store)
    handle_reply(store, InboundText("sim1", "+32470123456", "Ik zie hem nu aan de kerk"))
    [row] = inbox(store)
    assert (row.kind, row.alert_id, row.member_id, row.handled) == ("report", alert_id, member.id, False)


def test_stop_from_an_unknown_number_is_shown_to_a_person(store, member):
    assert handle_reply(store, InboundText("sim1", "+32470000999", "STOP")) is ReplyKind.REPORT
    assert inbox(store)[0].kind == "report"
