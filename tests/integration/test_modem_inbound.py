"""The modem's inbound path, write-ahead: nothing leaves the SIM before the sink (which
commits it) returned; a sink that fails leaves it there for the next listing. And a long
SMS refused after its first part is retried flagged possible_duplicate."""
from __future__ import annotations

import pytest

from gatewayd.channels.base import Delivery, InboundText, OutcomeKind
from gatewayd.model import Message
from gatewayd.store import AlertRequest
from tests.conftest import add_members
from tests.fixtures.modem import Sink, modem_factory, wait_for  # noqa: F401

pytestmark = pytest.mark.timeout(60)

MEMBER = "+32470000001"


class FailingSink(Sink):
    """A sink whose database is away until `up` is set: it raises, as the dispatcher's does."""

    def __init__(self):
        super().__init__()
        self.up = False
        self.refused = 0

    def __call__(self, event) -> None:
        if isinstance(event, InboundText) and not self.up:
            self.refused += 1
            raise RuntimeError("database is locked")
        super().__call__(event)


def test_a_reply_that_could_not_be_stored_stays_on_the_sim_until_it_is(modem_factory):
    emu, ch, _ = modem_factory(poll_interval=0.5)
    sink = FailingSink()
    ch._sink = sink                      # the same channel, now reporting to a failing database
    idx = emu.inject_sms(MEMBER, "Verdachte wagen")
    wait_for(lambda: sink.refused >= 1, what="the sink was tried")
    assert idx in emu.stored             # not deleted: it was not stored
    sink.up = True
    ev = sink.wait(InboundText)          # the periodic listing finds it again
    assert ev.text == "Verdachte wagen"
    wait_for(lambda: emu.stored == {}, what="deleted once stored")


def test_a_long_reply_stays_on_the_sim_until_all_its_parts_are_stored(modem_factory):
    emu, ch, sink = modem_factory()
    text = "Ik zag twee mannen aan de achterdeur van nummer 12, een van hen droeg een rode jas. " * 3
    emu.inject_sms(MEMBER, text)
    ev = sink.wait(InboundText)
    assert ev.text == text and ev.key
    wait_for(lambda: emu.stored == {}, what="all parts deleted")


def test_a_long_sms_refused_after_part_one_is_retried_flagged(modem_factory, store):
    emu, ch, _ = modem_factory()
    store.add_network("N")
    add_members(store, "N", 1)
    store.enqueue_alert(AlertRequest(networks=("N",), category="urgent", text="x" * 300))
    c = store.claim("sms", "modem0", "n")
    emu.fail_next_sends(None, 42)        # part 1 goes out, part 2: congestion
    out = ch.send(Delivery(c.message_id, c.delivery.number, c.delivery.text))
    assert out.kind is OutcomeKind.RETRY and out.maybe_sent
    assert store.complete(c, "modem0", out) == "retry"
    with store.session() as s:
        assert s.get(Message, c.message_id).possible_duplicate is True
