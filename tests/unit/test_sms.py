"""GSM 03.38 / UCS-2 encoding, segment counting, smart encoding and PDUs (23.038, 23.040)."""
from __future__ import annotations

import pytest
from gsmmodem import pdu as libpdu

from gatewayd import sms

NUMBER = "+32470123456"


# ---------------------------------------------------------------- alphabet and packing

def test_packing_matches_the_classic_hellohello_vector():
    assert sms.pack_septets(sms.encode_gsm7("hellohello")).hex().upper() == "E8329BFD4697D9EC37"


def test_section_sign_is_0x5f_and_inverted_question_mark_is_0x60():
    assert sms.encode_gsm7("§¿") == bytes((0x5F, 0x60))


def test_extension_characters_take_an_escape_pair():
    assert sms.encode_gsm7("€[]{}|~^\\\f") == bytes(
        b for code in (0x65, 0x3C, 0x3E, 0x28, 0x29, 0x40, 0x3D, 0x14, 0x2F, 0x0A) for b in (0x1B, code))


def test_decode_reverses_encode_for_the_whole_alphabet():
    text = "".join(ch for ch in sms.GSM7_BASIC if ch != "\x1b") + "".join(sms.GSM7_EXTENSION)
    assert sms.decode_gsm7(sms.encode_gsm7(text)) == text


def test_unpack_reverses_pack_with_fill_bits():
    septets = sms.encode_gsm7("Inbraak in de Kerkstraat")
    assert sms.unpack_septets(sms.pack_septets(septets, 1), len(septets), 1) == septets


def test_escape_character_is_not_a_text_character():
    assert not sms.is_gsm7("a\x1bb")


# ---------------------------------------------------------------- segment counting

@pytest.mark.parametrize("length,segments", [(1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4)])
def test_gsm7_segment_boundaries(length, segments):
    p = sms.plan("a" * length, smart=False)
    assert (p.encoding, p.segments) == ("gsm7", segments)


@pytest.mark.parametrize("length,segments", [(70, 1), (71, 2), (134, 2), (135, 3)])
def test_ucs2_segment_boundaries(length, segments):
    p = sms.plan("Ж" * length, smart=False)
    assert (p.encoding, p.segments) == ("ucs2", segments)


def test_extension_characters_count_double():
    assert sms.plan("€" * 80, smart=False).segments == 1
    assert sms.plan("€" * 81, smart=False).segments == 2


def test_escape_pair_is_never_split_across_parts():
    p = sms.plan("a" * 152 + "€" + "b" * 10, smart=False)
    assert p.parts[0] == "a" * 152 and p.parts[1].startswith("€")


def test_surrogate_pair_counts_two_units_and_is_never_split():
    p = sms.plan("Ж" * 66 + "🚨" + "Ж" * 5, smart=False)
    assert p.units == 73 and p.parts[0] == "Ж" * 66 and p.parts[1].startswith("🚨")


def test_chars_per_segment_reports_the_concatenated_capacity():
    assert sms.plan("a" * 200, smart=False).chars_per_segment == 153
    assert sms.plan("Ж" * 71, smart=False).chars_per_segment == 67


def test_plan_parts_join_to_the_text_sent():
    text = "Opgelet: verdachte personen gezien in de Dorpsstraat. " * 8
    p = sms.plan(text, smart=False)
    assert "".join(p.parts) == p.text_to_send == text


# ---------------------------------------------------------------- smart encoding

def test_smart_maps_accents_when_that_saves_segments():
    text = "Inbraakpoging in België gemeld. " * 3        # 96 chars: UCS-2 needs 2, GSM-7 1
    p = sms.plan(text, smart=True)
    assert (p.encoding, p.segments) == ("gsm7", 1)
    assert "Belgie" in p.text_to_send and ("ë", "e") in p.replaced


def test_smart_keeps_accents_when_no_segment_is_saved():
    p = sms.plan("België", smart=True)
    assert (p.encoding, p.text_to_send, p.replaced) == ("ucs2", "België", [])


def test_smart_maps_curly_quotes_and_dashes():
    text = "Politie: “blijf binnen” – deur ’s nachts dicht. " * 2
    p = sms.plan(text, smart=True)
    assert p.encoding == "gsm7" and '"blijf binnen" - deur \'s nachts' in p.text_to_send


def test_smart_does_nothing_when_the_text_cannot_become_gsm7():
    p = sms.plan("België 🚨 " * 10, smart=True)
    assert p.encoding == "ucs2" and "ë" in p.text_to_send


def test_without_smart_accents_force_ucs2():
    assert sms.plan("Inbraakpoging in België gemeld. " * 3, smart=False).encoding == "ucs2"


def test_french_accents_in_gsm7_stay_untouched():
    p = sms.plan("Cambriolage signalé à la rue de l'Église, soyez prudents", smart=True)
    assert p.encoding == "gsm7" and p.replaced == []


# ---------------------------------------------------------------- control characters

def test_ctrl_z_and_escape_are_removed_and_reported():
    p = sms.plan("a\x1ab\x1bc", smart=False)
    assert p.text_to_send == "abc" and ("\x1a", "") in p.replaced and ("\x1b", "") in p.replaced


def test_cr_and_lf_are_kept_as_text():
    assert sms.plan("a\r\nb", smart=False).text_to_send == "a\r\nb"


# ---------------------------------------------------------------- SMS-SUBMIT

def test_submit_pdu_matches_the_classic_known_vector():
    p = sms.plan("hellohello", smart=False)
    [pdu] = sms.submit_pdus("+46708251358", p, 0, status_report=False, validity=0xAA)
    assert pdu.hex == "0011000B916407281553F80000AA0AE8329BFD4697D9EC37" and pdu.tpdu_length == 23


def test_submit_pdu_requests_a_status_report():
    [pdu] = sms.submit_pdus(NUMBER, sms.plan("x", smart=False), 0)
    assert int(pdu.hex[2:4], 16) & 0x20


def test_submit_pdu_with_smsc_counts_tpdu_without_it():
    [pdu] = sms.submit_pdus(NUMBER, sms.plan("x", smart=False), 0, smsc="+32475161616")
    assert pdu.hex.startswith("07912374151616F6") and pdu.tpdu_length == len(pdu.hex) // 2 - 8


def test_national_number_uses_unknown_type_of_address():
    [pdu] = sms.submit_pdus("0470123456", sms.plan("x", smart=False), 0)
    assert pdu.hex[6:10] == "0A81"


def test_invalid_number_is_refused_with_a_reason():
    with pytest.raises(sms.SmsEncodingError, match="digits"):
        sms.submit_pdus("+32 470; AT", sms.plan("x", smart=False), 0)


@pytest.mark.parametrize("text", [
    "Hallo wereld",
    "Dringend: " + "verdachte wagen gezien, nummerplaat 1-ABC-123. " * 6,
    "Urgent: " + "cambriolage en cours, rue de l'Église [€] " * 8,
    "Опасность " * 20,
])
def test_library_decoder_reads_our_pdus_back(text):
    p = sms.plan(text, smart=False)
    pdus = sms.submit_pdus(NUMBER, p, 77)
    decoded = [libpdu.decodeSmsPdu(x.hex) for x in pdus]
    assert "".join(d["text"] for d in decoded) == p.text_to_send
    assert {d["number"] for d in decoded} == {NUMBER}


def test_concatenated_parts_share_the_reference_and_are_numbered():
    pdus = sms.submit_pdus(NUMBER, sms.plan("a" * 400, smart=False), 200)
    infos = [libpdu.decodeSmsPdu(x.hex)["udh"][0] for x in pdus]
    assert [(i.reference, i.parts, i.number) for i in infos] == [(200, 3, 1), (200, 3, 2), (200, 3, 3)]


def test_ucs2_pdu_with_ctrl_z_in_it_stays_pure_hex():
    # Even if a raw control character reached the PDU builder, hex carries it as data.
    p = sms.SmsPlan("ucs2", 1, "a\x1ab", parts=("a\x1ab",))
    [pdu] = sms.submit_pdus(NUMBER, p, 0)
    assert set(pdu.hex) <= set("0123456789ABCDEF") and "0061001A0062" in pdu.hex


# ---------------------------------------------------------------- SMS-DELIVER and STATUS-REPORT

def test_decode_deliver_classic_vector():
    d = sms.decode_deliver("07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07")
    assert (d.sender, d.text) == ("+31641600986", "How are you?")
    assert d.timestamp is not None and d.timestamp.year == 2002


def test_decode_deliver_ucs2_with_concatenation_header():
    body = "Jé".encode("utf-16-be")
    ud = bytes((5, 0, 3, 9, 2, 1)) + body
    pdu = "00" + "44" + "0B91" + "2374101032F5" + "00" + "08" + "52107191000040" + f"{len(ud):02X}" + ud.hex()
    d = sms.decode_deliver(pdu)
    assert (d.sender, d.text, d.concat_ref, d.part, d.parts) == ("+32470101235", "Jé", 9, 1, 2)


@pytest.mark.parametrize("dcs", [0x48, 0x58, 0x68, 0x78])
def test_decode_deliver_automatic_deletion_group_ucs2(dcs):
    """23.038 section 4: 01xx (0x40-0x7F) is the general coding group with automatic
    deletion; its alphabet bits mean what they mean in 00xx (0x48: UCS-2)."""
    ud = "Ik zag hem, één man".encode("utf-16-be")
    pdu = "00" + "04" + "0B91" + "2374101032F5" + "00" + f"{dcs:02X}" + "52107191000040" + f"{len(ud):02X}" + ud.hex()
    assert sms.decode_deliver(pdu).text == "Ik zag hem, één man"


def test_decode_deliver_automatic_deletion_group_gsm7():
    septets = sms.encode_gsm7("STOP")
    pdu = "00" + "04" + "0B91" + "2374101032F5" + "00" + "40" + "52107191000040" + f"{len(septets):02X}" + \
        sms.pack_septets(septets).hex()
    assert sms.decode_deliver(pdu).text == "STOP"


def test_decode_deliver_gsm7_with_concatenation_header():
    udh = bytes((5, 0, 3, 7, 2, 2))
    septets = sms.encode_gsm7("STOP")
    ud = udh + sms.pack_septets(septets, 1)
    pdu = "00" + "44" + "0B91" + "2374101032F5" + "0000" + "52107191000040" + f"{7 + len(septets):02X}" + ud.hex()
    d = sms.decode_deliver(pdu)
    assert (d.text, d.concat_ref, d.part, d.parts) == ("STOP", 7, 2, 2)


def _status_report(mr: int, st: int, smsc: bool = True) -> str:
    ts = "52107191000040"
    return ("00" if smsc else "") + "06" + f"{mr:02X}" + "0B91" + "2374101032F5" + ts + ts + f"{st:02X}"


def test_decode_status_report_delivered():
    r = sms.decode_status_report(_status_report(33, 0x00))
    assert (r.reference, r.recipient, r.delivered, r.permanent) == (33, "+32470101235", True, True)


def test_decode_status_report_temporary_failure_is_not_final():
    r = sms.decode_status_report(_status_report(5, 0x21))
    assert (r.delivered, r.permanent) == (False, False)


def test_decode_status_report_without_smsc_field():
    r = sms.decode_status_report(_status_report(9, 0x46, smsc=False))
    assert (r.reference, r.delivered, r.permanent) == (9, False, True)


# ---------------------------------------------------------------- why not gsmmodem.pdu alone

def test_library_maps_0x5f_wrongly_which_is_why_we_encode_ourselves():
    assert libpdu.GSM7_BASIC[0x5F] != "§" and sms.GSM7_BASIC[0x5F] == "§"


def test_library_lets_escape_through_as_text_which_we_do_not():
    assert libpdu.encodeGsm7("a\x1bb") == bytes((0x61, 0x1B, 0x62))
    assert sms.plan("a\x1bb", smart=False).text_to_send == "ab"
