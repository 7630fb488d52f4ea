"""The modem channel against the emulated modem, through pyserial on a pty: sending,
encoding on the wire, no injection, delivery reports, replies, quirky and slow modems."""
from __future__ import annotations

import re
import threading
import time

import pytest

from gatewayd import sms
from gatewayd.channels.base import Delivery, DeliveryReport, DeviceState, InboundText, OutcomeKind
from gatewayd.config import SmsConfig
from tests.fixtures.modem import HUAWEI, SIM800, Profile, modem_factory  # noqa: F401

pytestmark = pytest.mark.timeout(60)

NUMBER = "+32470123456"
LONG_NL = ("Opgelet: in de Kerkstraat en omgeving werden vannacht verdachte personen gezien die aan "
           "deuren en ramen voelden. Sluit alles goed af en bel 101 bij verdachte situaties. ") * 2
LONG_FR = ("Attention : des cambriolages ont été signalés près de l'église. Fermez portes et fenêtres, "
           "et appelez le 101 si vous voyez quelque chose de suspect. Merci de votre vigilance ! ") * 2


def deliver(text: str, number: str = NUMBER, mid: int = 1, **kw) -> Delivery:
    return Delivery(message_id=mid, number=number, text=text, **kw)


# ---------------------------------------------------------------- sending

def test_sms_goes_out_with_number_and_text(modem_factory):
    emu, ch, _ = modem_factory()
    out = ch.send(deliver("Inbraak gemeld in de Dorpsstraat"))
    assert out.kind is OutcomeKind.SENT
    assert emu.messages() == [(NUMBER, "Inbraak gemeld in de Dorpsstraat")]


def test_outcome_carries_tp_mr_of_last_segment_and_segment_count(modem_factory):
    emu, ch, _ = modem_factory()
    out = ch.send(deliver("x" * 400))
    assert (out.reference, out.segments) == (emu.sent[-1].mr, 3)


def test_parts_share_a_reference_and_each_message_gets_its_own(modem_factory):
    emu, ch, _ = modem_factory()
    ch.send(deliver("a" * 200, mid=1))
    ch.send(deliver("b" * 200, mid=2))
    refs = [s.concat_ref for s in emu.sent]
    assert refs[0] == refs[1] and refs[2] == refs[3] and refs[0] != refs[2]


def test_status_report_is_requested(modem_factory):
    emu, ch, _ = modem_factory()
    ch.send(deliver("hallo"))
    assert emu.sent[0].status_report is True


def test_status_report_not_requested_when_disabled(modem_factory):
    emu, ch, _ = modem_factory(delivery_reports=False)
    ch.send(deliver("hallo"))
    assert emu.sent[0].status_report is False


@pytest.mark.parametrize("text", [LONG_NL, LONG_FR, LONG_NL.replace("Kerkstraat", "Kerkstraat in België"),
                                  "“Let op” – " + LONG_FR])
def test_segments_on_the_air_equal_the_preview(modem_factory, text):
    emu, ch, _ = modem_factory()
    out = ch.send(deliver(text))
    preview = sms.plan(text, smart=True)
    assert out.segments == len(emu.sent) == preview.segments
    assert emu.messages() == [(NUMBER, preview.text_to_send)]


def test_smart_encoding_off_keeps_accents_in_ucs2(modem_factory):
    emu, ch, _ = modem_factory(sms=SmsConfig(smart_encoding=False))
    text = "Inbraakpoging in België gemeld. " * 3
    ch.send(deliver(text))
    assert emu.messages() == [(NUMBER, text)] and len(emu.sent) == 2


def test_text_over_max_segments_fails_without_sending(modem_factory):
    emu, ch, _ = modem_factory(sms=SmsConfig(max_segments=2))
    out = ch.send(deliver("y" * 400))
    assert out.kind is OutcomeKind.FAILED and "max_segments" in out.detail and emu.sent == []


def test_unusable_number_fails_without_sending(modem_factory):
    emu, ch, _ = modem_factory()
    out = ch.send(deliver("hallo", number="+32 470 abc"))
    assert out.kind is OutcomeKind.FAILED and emu.sent == []


def test_drill_puts_nothing_on_the_air(modem_factory):
    emu, ch, _ = modem_factory()
    out = ch.send(deliver("oefening " * 30, drill=True))
    assert (out.kind, out.detail, out.segments) == (OutcomeKind.SENT, "drill", 2)
    assert not any(c.upper().startswith("AT+CMGS") for c in emu.commands)


def test_smsc_from_config_goes_into_the_pdu(modem_factory):
    emu, ch, _ = modem_factory(smsc="+32475161616")
    ch.send(deliver("hallo"))
    assert emu.sent[0].pdu.startswith("07912374151616F6")


# ---------------------------------------------------------------- no injection, byte for byte

WIRE_GRAMMAR = re.compile(rb"(?:AT[\x20-\x7e]*\r|[0-9A-F]+\x1a)*")


def _pdu_blocks(wire: bytes) -> list[bytes]:
    return re.findall(rb"AT\+CMGS=\d+\r([^\x1a]*)\x1a", wire)


HOSTILE = "a\x1aAT+CFUN=0\x1a\r\nATD112;\r\x1b\x1bAT+CPIN=0000\r\n\x1a"


def test_wire_holds_only_command_lines_and_hex_pdus(modem_factory):
    emu, ch, _ = modem_factory()
    ch.send(deliver(HOSTILE))
    assert WIRE_GRAMMAR.fullmatch(bytes(emu.wire_in))


def test_ctrl_z_on_the_wire_only_ends_pdus(modem_factory):
    emu, ch, _ = modem_factory()
    out = ch.send(deliver(HOSTILE * 10))
    assert bytes(emu.wire_in).count(b"\x1a") == out.segments == len(_pdu_blocks(bytes(emu.wire_in)))


def test_hostile_text_adds_no_command(modem_factory):
    emu, ch, _ = modem_factory()
    before = len(emu.commands)
    ch.send(deliver(HOSTILE))
    new = [c.upper() for c in emu.commands[before:]]
    assert new == ["AT+CMGS=" + c.split("=")[1] for c in new] and len(new) == 1


def test_cr_and_lf_travel_inside_the_message(modem_factory):
    emu, ch, _ = modem_factory()
    ch.send(deliver("regel 1\r\nAT+CFUN=0\r\nregel 3"))
    assert emu.messages() == [(NUMBER, "regel 1\r\nAT+CFUN=0\r\nregel 3")]
    assert "AT+CFUN=0" not in [c.upper() for c in emu.commands]


def test_escape_and_ctrl_z_are_not_in_the_delivered_text(modem_factory):
    emu, ch, _ = modem_factory()
    ch.send(deliver("a\x1ab\x1bc"))
    assert emu.messages() == [(NUMBER, "abc")]


# ---------------------------------------------------------------- delivery reports

def test_status_report_becomes_a_delivery_report(modem_factory):
    emu, ch, sink = modem_factory()
    out = ch.send(deliver("hallo"))
    emu.status_report(out.reference, NUMBER, 0x00)
    rep = sink.wait(DeliveryReport)
    assert (rep.device, rep.reference, rep.number, rep.delivered, rep.permanent) == \
        ("modem0", out.reference, NUMBER, True, True)


def test_expired_status_report_is_a_permanent_failure(modem_factory):
    emu, ch, sink = modem_factory()
    out = ch.send(deliver("hallo"))
    emu.status_report(out.reference, NUMBER, 0x46)
    rep = sink.wait(DeliveryReport)
    assert (rep.delivered, rep.permanent, rep.detail) == (False, True, "validity period expired")


def test_temporary_status_report_is_not_final(modem_factory):
    emu, ch, sink = modem_factory()
    out = ch.send(deliver("hallo"))
    emu.status_report(out.reference, NUMBER, 0x21)
    rep = sink.wait(DeliveryReport)
    assert (rep.delivered, rep.permanent) == (False, False)


def test_report_that_never_comes_blocks_nothing(modem_factory):
    emu, ch, _ = modem_factory()
    outs = [ch.send(deliver(f"bericht {i}", mid=i)) for i in range(5)]
    assert [o.kind for o in outs] == [OutcomeKind.SENT] * 5


def test_report_arriving_mid_send_is_not_lost(modem_factory):
    emu, ch, sink = modem_factory(Profile(name="slowish", cmgs_delay=0.8))
    first = ch.send(deliver("eerste"))
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("out", ch.send(deliver("tweede", mid=2))))
    t.start()
    time.sleep(0.3)           # inside the second +CMGS, before its answer
    emu.status_report(first.reference, NUMBER, 0x00)
    t.join(10)
    assert result["out"].kind is OutcomeKind.SENT
    assert sink.wait(DeliveryReport).reference == first.reference


# ---------------------------------------------------------------- replies

def test_incoming_sms_becomes_inbound_text(modem_factory):
    emu, ch, sink = modem_factory()
    emu.inject_sms("+32470999888", "STOP")
    msg = sink.wait(InboundText)
    assert (msg.device, msg.number, msg.text) == ("modem0", "+32470999888", "STOP")


def test_incoming_sms_is_deleted_from_the_sim(modem_factory):
    emu, ch, sink = modem_factory()
    emu.inject_sms("+32470999888", "JA")
    sink.wait(InboundText)
    deadline = time.monotonic() + 5
    while emu.stored and time.monotonic() < deadline:
        time.sleep(0.02)
    assert emu.stored == {}


def test_long_incoming_sms_is_reassembled(modem_factory):
    emu, ch, sink = modem_factory()
    text = "Ik heb een verdachte wagen gezien in de Stationsstraat, een grijze bestelwagen. " * 3
    emu.inject_sms("+32470999888", text)
    assert sink.wait(InboundText).text == text


def test_accented_reply_in_ucs2_is_read(modem_factory):
    emu, ch, sink = modem_factory()
    emu.inject_sms("+32470999888", "Arrêt – merci")
    assert sink.wait(InboundText).text == "Arrêt – merci"


def test_messages_stored_while_away_are_read_on_connect(modem_factory):
    emu = modem_factory.emulator()
    emu.inject_sms("+32470999888", "UIT", notify=False)
    from tests.fixtures.modem import modem_config
    ch, sink = modem_factory.channel(modem_config(emu.port))
    assert sink.wait(InboundText).text == "UIT"


def test_incoming_notice_mid_send_is_not_lost(modem_factory):
    emu, ch, sink = modem_factory(Profile(name="slowish", cmgs_delay=0.8))
    t = threading.Thread(target=ch.send, args=(deliver("hallo"),))
    t.start()
    time.sleep(0.3)
    emu.inject_sms("+32470999888", "OK")
    t.join(10)
    assert sink.wait(InboundText).text == "OK"


# ---------------------------------------------------------------- quirky and slow modems

def test_quirky_modem_comes_up(modem_factory):
    emu, ch, _ = modem_factory(HUAWEI)
    assert ch.health().state is DeviceState.UP and ch.health().detail["manufacturer"] == "huawei"


def test_quirky_modem_sends_through_chatter(modem_factory):
    emu, ch, _ = modem_factory(HUAWEI)
    outs = [ch.send(deliver(f"bericht {i} " * 20, mid=i)) for i in range(6)]
    assert [o.kind for o in outs] == [OutcomeKind.SENT] * 6 and len(emu.messages()) == 6


def test_quirky_modem_chatter_is_not_mistaken_for_a_report(modem_factory):
    emu, ch, sink = modem_factory(HUAWEI)
    for i in range(4):
        ch.send(deliver("hallo", mid=i))
    assert sink.of(DeliveryReport) == [] and sink.of(InboundText) == []


def test_quirky_modem_delivers_reports(modem_factory):
    emu, ch, sink = modem_factory(HUAWEI)
    out = ch.send(deliver("hallo"))
    emu.status_report(out.reference, NUMBER)
    assert sink.wait(DeliveryReport).delivered


@pytest.mark.timeout(90)
def test_slow_modem_sends(modem_factory):
    emu, ch, _ = modem_factory(SIM800)
    out = ch.send(deliver("traag modem"))
    assert out.kind is OutcomeKind.SENT and emu.messages() == [(NUMBER, "traag modem")]


def test_modem_that_keeps_echo_on_still_sends(modem_factory):
    emu, ch, _ = modem_factory(Profile(name="echoer", refuse=("E0",)))
    out = ch.send(deliver("echo blijft aan " * 12))
    assert out.kind is OutcomeKind.SENT and out.reference == emu.sent[-1].mr
    assert emu.messages() == [(NUMBER, "echo blijft aan " * 12)]


def test_unsolicited_line_right_after_the_prompt_is_not_lost(modem_factory):
    emu, ch, _ = modem_factory(Profile(name="prompt-chatter", prompt_chatter="^RSSI: 13"))
    out = ch.send(deliver("hallo"))
    assert out.kind is OutcomeKind.SENT
    deadline = time.monotonic() + 5
    while ch.health().signal != 13 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ch.health().signal == 13
