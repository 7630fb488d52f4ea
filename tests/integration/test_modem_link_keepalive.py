"""Issue 7, faster consecutive sends: the channel asks the modem to keep the radio
link open between messages (AT+CMMS=2), copes with modems that refuse it or only
know mode 1, and asks again after a reconnect. Through pyserial on a pty, against
the emulator's link latency model: a +CMGS that finds the link down pays the
set-up (counted per SMS in `SentSms.link_setup`, so nothing here asserts timing)."""
from __future__ import annotations

from dataclasses import replace

import pytest

from gatewayd.channels.base import Delivery, DeviceEvent, DeviceState, OutcomeKind
from gatewayd.channels.modem import doctor
from tests.fixtures.modem import WELL_BEHAVED, modem_config, modem_factory, wait_for  # noqa: F401

pytestmark = pytest.mark.timeout(60)

# A link that, once up, stays up far longer than any gap between two sends here,
# even on a loaded machine: what is counted is set-ups, not seconds.
LINK = replace(WELL_BEHAVED, name="link", link_setup=0.2, link_hold=30.0)


def deliver(i: int, text: str = "Verdachte wagen gezien in de Molenstraat") -> Delivery:
    return Delivery(message_id=i, number=f"+3247012{i:04d}", text=text)


def setups(emu, since: int = 0) -> int:
    return sum(s.link_setup for s in emu.sent[since:])


def cmms(emu) -> list[str]:
    return [c for c in emu.commands if c.upper().startswith("AT+CMMS")]


def test_link_is_kept_open_when_the_modem_supports_it(modem_factory):
    emu, ch, _ = modem_factory(LINK)
    assert cmms(emu) == ["AT+CMMS=2"]
    outs = [ch.send(deliver(i)) for i in range(6)]
    assert [o.kind for o in outs] == [OutcomeKind.SENT] * 6 and len(emu.sent) == 6
    assert setups(emu) == 1                 # only the first send brought the link up
    assert emu.link_mode == 2
    assert ch.health().detail["keep_link"] == "AT+CMMS=2"


def test_parts_of_a_long_message_share_one_link(modem_factory):
    emu, ch, _ = modem_factory(LINK)
    out = ch.send(deliver(1, "Opgelet: inbraken in de buurt, sluit deuren en ramen. " * 8))
    assert out.kind is OutcomeKind.SENT and out.segments == len(emu.sent) >= 3
    assert setups(emu) == 1


def test_modem_refusing_cmms_still_sends(modem_factory):
    emu, ch, _ = modem_factory(replace(LINK, name="no-cmms", refuse=("+CMMS",)))
    assert cmms(emu) == ["AT+CMMS=2", "AT+CMMS=1"]      # both asked, both refused, nothing else
    outs = [ch.send(deliver(i)) for i in range(4)]
    assert [o.kind for o in outs] == [OutcomeKind.SENT] * 4
    assert [m for m, _ in emu.messages()] == [f"+3247012{i:04d}" for i in range(4)]
    assert setups(emu) == 4                 # every send set the link up: slower, but it works
    assert emu.link_mode == 0 and ch.health().detail["keep_link"] == "no"
    assert cmms(emu) == ["AT+CMMS=2", "AT+CMMS=1"]      # not asked again per message


def test_doctor_says_whether_the_link_is_kept(modem_factory):
    keeps = modem_factory.emulator(LINK, "keeps")
    refuses = modem_factory.emulator(replace(LINK, refuse=("+CMMS",)), "refuses")
    good = {c.what.split(" ", 2)[-1]: c for c in doctor(modem_config(keeps.port))}
    bad = {c.what.split(" ", 2)[-1]: c for c in doctor(modem_config(refuses.port))}
    assert good["PDU mode"].ok and "AT+CMMS=2" in good["PDU mode"].detail
    assert bad["PDU mode"].ok and "AT+CMMS refused" in bad["PDU mode"].detail


def test_mode_1_modem_is_asked_again_after_a_pause(modem_factory):
    # Mode 1 falls back to 0 when the link drops after an idle gap; the channel
    # re-issues it before the first send after a pause.
    emu, ch, _ = modem_factory(replace(LINK, name="cmms1", refuse=("+CMMS=2",), link_hold=3.0))
    assert cmms(emu) == ["AT+CMMS=2", "AT+CMMS=1"]
    assert ch.health().detail["keep_link"] == "AT+CMMS=1"
    for i in range(3):
        assert ch.send(deliver(i)).kind is OutcomeKind.SENT
    wait_for(lambda: emu.link_mode == 0, 10, "the emulated modem's link timer running out")
    asked = len(cmms(emu))
    for i in range(3, 6):
        assert ch.send(deliver(i)).kind is OutcomeKind.SENT
    assert len(cmms(emu)) > asked and emu.link_mode == 1
    assert setups(emu, 3) == 1              # after the pause, one set-up for the burst


def test_link_mode_asked_again_after_the_modem_comes_back(modem_factory):
    emu, ch, sink = modem_factory(LINK)
    assert ch.send(deliver(0)).kind is OutcomeKind.SENT
    emu.unplug()
    sink.wait(DeviceEvent, 10, lambda e: e.health.state is DeviceState.DOWN)
    emu.replug()                             # a new session: the modem forgot AT+CMMS
    wait_for(lambda: ch.health().state is DeviceState.UP, 20, "modem up again")
    before = len(emu.sent)
    for i in range(1, 5):
        assert ch.send(deliver(i)).kind is OutcomeKind.SENT
    assert cmms(emu) == ["AT+CMMS=2", "AT+CMMS=2"] and emu.link_mode == 2
    assert setups(emu, before) == 1


def test_link_mode_asked_again_after_a_modem_reset(modem_factory):
    # A hung modem is reset with AT+CFUN=1,1, which also clears AT+CMMS.
    emu, ch, sink = modem_factory(LINK, poll_interval=0.5)
    assert ch.send(deliver(0)).kind is OutcomeKind.SENT
    emu.freeze(60, reset_clears=True)
    wait_for(lambda: "AT+CFUN=1,1" in emu.commands, 30, "the channel resetting the frozen modem")
    wait_for(lambda: ch.health().state is DeviceState.UP and len(cmms(emu)) == 2, 30, "modem up again")
    before = len(emu.sent)
    for i in range(1, 5):
        assert ch.send(deliver(i)).kind is OutcomeKind.SENT
    assert emu.link_mode == 2 and setups(emu, before) == 1
