"""SMS text encoding and PDU building (3GPP TS 23.038 / 23.040).

One function, `plan()`, decides how a text goes out: GSM 7-bit default alphabet
(plus the extension table) when every character fits, UCS-2 otherwise, with an
optional "smart" pass that maps look-alikes (ë -> e, curly quotes -> ') when
that saves segments. The web preview and the modem channel both call `plan()`,
so the segment count shown to the police is the count that is sent.

`submit_pdus()` turns a plan into SMS-SUBMIT TPDUs (status report requested,
concatenation UDH with an 8-bit reference). `decode_deliver()` and
`decode_status_report()` read what the modem hands back.

Why our own code rather than `gsmmodem.pdu` (python-gsmmodem-new 0.13): checked
against 23.038 it maps 0x5F to '`' instead of '§', treats ESC (0x1B) as an
encodable text character (so a text holding ESC silently turns the next
character into an extension-table one), drops form feed from the extension
table, counts UCS-2 length in code points (an emoji is two UTF-16 units) and
can split a surrogate pair across parts. tests/unit/test_sms.py shows these.
The emulator in tests/ still uses `gsmmodem.pdu` to decode what we send, as an
independent reader where it is correct.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable

# 23.038 section 6.2.1: the default alphabet, index = septet value.
# 0x1B is ESC (escape to the extension table), never a text character.
GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
ESC = 0x1B
# 23.038 section 6.2.1.1: the extension table (reached through ESC).
GSM7_EXTENSION = {"\f": 0x0A, "^": 0x14, "{": 0x28, "}": 0x29, "\\": 0x2F,
                  "[": 0x3C, "~": 0x3D, "]": 0x3E, "|": 0x40, "€": 0x65}

_BASIC_INDEX = {ch: i for i, ch in enumerate(GSM7_BASIC) if i != ESC}
_EXT_REVERSE = {v: k for k, v in GSM7_EXTENSION.items()}

# Single-part and per-part capacities (23.040 9.2.3.24; 6-octet concatenation UDH).
GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67        # in UTF-16 code units

# Smart encoding: look-alikes in the default alphabet for common characters
# of Dutch, French and German texts and of word processors.
SMART_MAP = {
    "ë": "e", "ê": "e", "Ë": "E", "Ê": "E", "È": "E", "ï": "i", "î": "i", "í": "i",
    "Ï": "I", "Î": "I", "Í": "I", "Ì": "I", "â": "a", "á": "a", "ã": "a", "À": "A", "Â": "A",
    "Á": "A", "Ã": "A", "ô": "o", "ó": "o", "õ": "o", "Ô": "O", "Ó": "O", "Ò": "O", "Õ": "O",
    "û": "u", "ú": "u", "Û": "U", "Ú": "U", "Ù": "U", "ç": "c", "ÿ": "y", "Ÿ": "Y",
    "œ": "oe", "Œ": "OE", "ĳ": "ij", "Ĳ": "IJ",
    "‘": "'", "’": "'", "‚": "'", "‛": "'", "´": "'", "`": "'", "′": "'",
    "“": '"', "”": '"', "„": '"', "‟": '"', "«": '"', "»": '"', "″": '"',
    "–": "-", "—": "-", "‐": "-", "‑": "-", "−": "-", "…": "...", "•": "*", "·": ".",
    "\u00a0": " ", "\u202f": " ", "\u2009": " ", "\u2002": " ", "\u2003": " ", "\t": " ",
}

# Control characters never reach the air: a phone cannot show them, and Ctrl-Z
# or ESC in a text must not be able to mean anything to the modem or handset.
# LF and CR are kept (the default alphabet has them); everything else is dropped.
_KEEP_CONTROLS = {"\n", "\r"}


class Encoding(enum.StrEnum):
    GSM7 = "gsm7"
    UCS2 = "ucs2"


@dataclass(frozen=True)
class SmsPlan:
    """How a text goes out: what the preview shows and what the modem sends."""

    encoding: str                 # 'gsm7' | 'ucs2'
    segments: int
    text_to_send: str
    replaced: list[tuple[str, str]] = field(default_factory=list)   # (original, replacement), once each
    chars_per_segment: int = GSM7_SINGLE
    units: int = 0                # septets (gsm7) or UTF-16 units (ucs2) of the whole text
    parts: tuple[str, ...] = ()   # the text of each segment, in order


class SmsEncodingError(ValueError):
    """A text or number cannot be put into an SMS PDU; the message says why."""


# ---------------------------------------------------------------- alphabet

def gsm7_units(ch: str) -> int | None:
    """Septets CH takes in the default alphabet (1 or 2), None if it has no code."""
    if ch in _BASIC_INDEX:
        return 1
    if ch in GSM7_EXTENSION:
        return 2
    return None


def is_gsm7(text: str) -> bool:
    """True when every character of TEXT has a code in the default alphabet or its extension."""
    return all(gsm7_units(ch) is not None for ch in text)


def encode_gsm7(text: str) -> bytes:
    """TEXT as unpacked septets (one byte per septet); raises SmsEncodingError on a foreign character."""
    out = bytearray()
    for ch in text:
        if ch in _BASIC_INDEX:
            out.append(_BASIC_INDEX[ch])
        elif ch in GSM7_EXTENSION:
            out += bytes((ESC, GSM7_EXTENSION[ch]))
        else:
            raise SmsEncodingError(f"character {ch!r} (U+{ord(ch):04X}) is not in the GSM 7-bit alphabet")
    return bytes(out)


def decode_gsm7(septets: bytes) -> str:
    """Unpacked septets -> text. An unknown escape shows the basic character (23.038 6.2.1.1)."""
    out = []
    it = iter(septets)
    for s in it:
        s &= 0x7F
        if s == ESC:
            nxt = next(it, None)
            if nxt is None:
                out.append(" ")
            elif nxt & 0x7F in _EXT_REVERSE:
                out.append(_EXT_REVERSE[nxt & 0x7F])
            else:
                out.append(" " if nxt & 0x7F == ESC else GSM7_BASIC[nxt & 0x7F])
        else:
            out.append(GSM7_BASIC[s])
    return "".join(out)


def pack_septets(septets: bytes, fill_bits: int = 0) -> bytes:
    """Pack septets LSB first after FILL_BITS zero bits (23.038 6.1.2.1.1)."""
    acc, nbits, out = 0, fill_bits, bytearray()
    for s in septets:
        acc |= (s & 0x7F) << nbits
        nbits += 7
        while nbits >= 8:
            out.append(acc & 0xFF)
            acc >>= 8
            nbits -= 8
    if nbits:
        out.append(acc & 0xFF)
    return bytes(out)


def unpack_septets(data: bytes, count: int, fill_bits: int = 0) -> bytes:
    """COUNT septets from packed DATA, skipping FILL_BITS leading bits."""
    bits = int.from_bytes(data, "little")
    return bytes((bits >> (fill_bits + 7 * i)) & 0x7F for i in range(count))


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-be")) // 2


# ---------------------------------------------------------------- planning

def _strip_controls(text: str) -> tuple[str, list[tuple[str, str]]]:
    removed: list[tuple[str, str]] = []
    out = []
    for ch in text:
        if (ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0) and ch not in _KEEP_CONTROLS:
            if ch == "\t":
                out.append(" ")
                pair = (ch, " ")
            else:
                pair = (ch, "")
            if pair not in removed:
                removed.append(pair)
        else:
            out.append(ch)
    return "".join(out), removed


def _smart(text: str) -> tuple[str, list[tuple[str, str]]]:
    replaced: list[tuple[str, str]] = []
    out = []
    for ch in text:
        if gsm7_units(ch) is None and ch in SMART_MAP:
            out.append(SMART_MAP[ch])
            if (ch, SMART_MAP[ch]) not in replaced:
                replaced.append((ch, SMART_MAP[ch]))
        else:
            out.append(ch)
    return "".join(out), replaced


def _split(text: str, units: Callable[[str], int], single: int, part: int) -> list[str]:
    """TEXT as one part if it fits SINGLE units, else parts of at most PART units each,
    never cutting a character (UNITS(ch) gives its size)."""
    if sum(units(ch) for ch in text) <= single:
        return [text]
    parts: list[str] = []
    cur: list[str] = []
    used = 0
    for ch in text:
        n = units(ch)
        if used + n > part:
            parts.append("".join(cur))
            cur, used = [], 0
        cur.append(ch)
        used += n
    parts.append("".join(cur))
    return parts


def split_gsm7(text: str) -> list[str]:
    """Parts of a GSM-7 TEXT; an escape pair is never split across two parts."""
    return _split(text, lambda ch: gsm7_units(ch) or 0, GSM7_SINGLE, GSM7_PART)


def split_ucs2(text: str) -> list[str]:
    """Parts of a UCS-2 TEXT counted in UTF-16 units; a surrogate pair is never split."""
    return _split(text, lambda ch: 2 if ord(ch) > 0xFFFF else 1, UCS2_SINGLE, UCS2_PART)


def _plan_exact(text: str, replaced: list[tuple[str, str]]) -> SmsPlan:
    if is_gsm7(text):
        parts = split_gsm7(text)
        units = sum(gsm7_units(ch) or 0 for ch in text)
        per = GSM7_SINGLE if len(parts) == 1 else GSM7_PART
        return SmsPlan(Encoding.GSM7.value, len(parts), text, replaced, per, units, tuple(parts))
    parts = split_ucs2(text)
    per = UCS2_SINGLE if len(parts) == 1 else UCS2_PART
    return SmsPlan(Encoding.UCS2.value, len(parts), text, replaced, per, utf16_units(text), tuple(parts))


def plan(text: str, smart: bool) -> SmsPlan:
    """Decide encoding and segments for TEXT.

    Control characters other than CR and LF are always removed (listed in
    `replaced` with an empty replacement). With SMART, look-alike mapping is
    applied only when it makes the whole text GSM-7 *and* needs fewer
    segments; otherwise the text keeps its accents in UCS-2.
    """
    clean, removed = _strip_controls(text)
    exact = _plan_exact(clean, removed)
    if not smart or exact.encoding == Encoding.GSM7.value:
        return exact
    mapped, replaced = _smart(clean)
    if not is_gsm7(mapped):
        return exact
    candidate = _plan_exact(mapped, removed + replaced)
    return candidate if candidate.segments < exact.segments else exact


# ---------------------------------------------------------------- addresses

def encode_address(number: str) -> bytes:
    """TP-DA / TP-OA: digit count, type of address, swapped BCD (23.040 9.1.2.5)."""
    num = number.strip()
    toa = 0x81
    if num.startswith("+"):
        toa, num = 0x91, num[1:]
    if not num.isdigit() or not 1 <= len(num) <= 20:
        raise SmsEncodingError(f"number {number!r}: expected digits with an optional leading +")
    return bytes((len(num), toa)) + _bcd(num)


def _bcd(digits: str) -> bytes:
    if len(digits) % 2:
        digits += "F"
    return bytes(int(digits[i + 1] + digits[i], 16) for i in range(0, len(digits), 2))


def encode_smsc(number: str) -> bytes:
    """SMSC address field: octet count (TOA included), TOA, swapped BCD; b'\\x00' for the SIM's own."""
    if not number:
        return b"\x00"
    addr = encode_address(number)
    return bytes((len(addr) - 1,)) + addr[1:]


def _decode_bcd(data: bytes, digits: int) -> str:
    out = []
    for b in data:
        out.append("0123456789*#abc"[b & 0x0F] if (b & 0x0F) < 15 else "")
        out.append("0123456789*#abc"[b >> 4] if (b >> 4) < 15 else "")
    return "".join(out)[:digits]


def _decode_address(pdu: bytes, pos: int) -> tuple[str, int]:
    """Address at POS -> (number, position after it). Alphanumeric senders are decoded as text."""
    ndigits, toa = pdu[pos], pdu[pos + 1]
    nbytes = (ndigits + 1) // 2
    raw = pdu[pos + 2: pos + 2 + nbytes]
    if toa & 0x70 == 0x50:   # alphanumeric (23.040 9.1.2.5)
        number = decode_gsm7(unpack_septets(raw, ndigits * 4 // 7))
    else:
        number = _decode_bcd(raw, ndigits)
        if toa & 0x70 == 0x10:
            number = "+" + number
    return number, pos + 2 + nbytes


# ---------------------------------------------------------------- SMS-SUBMIT

@dataclass(frozen=True)
class SubmitPdu:
    """One SMS-SUBMIT ready for AT+CMGS: hex PDU (SMSC field included) and TPDU length."""

    hex: str
    tpdu_length: int       # the <length> of AT+CMGS=<length>: octets after the SMSC field
    part: int = 1
    parts: int = 1


VALIDITY_24H = 0xA7        # relative TP-VP: (167-143) * 30 min + 12 h = 24 h


def submit_pdus(number: str, sms_plan: SmsPlan, reference: int, smsc: str = "",
                status_report: bool = True, validity: int | None = VALIDITY_24H) -> list[SubmitPdu]:
    """SMS-SUBMIT PDUs for SMS_PLAN to NUMBER (23.040 9.2.2.2).

    REFERENCE (0..255) is the concatenation reference shared by the parts of
    this one message; TP-MR is left 0 for the modem to assign.
    """
    if not 0 <= reference <= 255:
        raise SmsEncodingError(f"concatenation reference {reference} is outside 0..255")
    parts = sms_plan.parts or (sms_plan.text_to_send,)
    if len(parts) > 255:
        raise SmsEncodingError(f"{len(parts)} segments is more than the 255 a concatenated SMS can hold")
    head = encode_smsc(smsc)
    dest = encode_address(number)
    out = []
    for i, text in enumerate(parts, start=1):
        udh = bytes((0x00, 0x03, reference, len(parts), i)) if len(parts) > 1 else b""
        first = 0x01 | (0x20 if status_report else 0) | (0x40 if udh else 0) | (0x10 if validity is not None else 0)
        dcs = 0x00 if sms_plan.encoding == Encoding.GSM7.value else 0x08
        udl, ud = _user_data(text, sms_plan.encoding, udh)
        tpdu = bytes((first, 0x00)) + dest + bytes((0x00, dcs))
        if validity is not None:
            tpdu += bytes((validity,))
        tpdu += bytes((udl,)) + ud
        out.append(SubmitPdu((head + tpdu).hex().upper(), len(tpdu), i, len(parts)))
    return out


def _user_data(text: str, encoding: str, udh: bytes) -> tuple[int, bytes]:
    """(TP-UDL, TP-UD) for TEXT with optional UDH (23.040 9.2.3.16, 9.2.3.24)."""
    header = bytes((len(udh),)) + udh if udh else b""
    if encoding == Encoding.GSM7.value:
        septets = encode_gsm7(text)
        # The header is followed by fill bits so the text starts on a septet boundary.
        fill = (7 - (len(header) * 8) % 7) % 7
        header_septets = (len(header) * 8 + fill) // 7
        udl = header_septets + len(septets)
        if udl > GSM7_SINGLE:
            raise SmsEncodingError(f"segment of {len(septets)} septets does not fit one SMS")
        return udl, header + pack_septets(septets, fill)
    body = text.encode("utf-16-be")
    if len(header) + len(body) > 140:
        raise SmsEncodingError(f"segment of {len(body)} octets does not fit one SMS")
    return len(header) + len(body), header + body


# ---------------------------------------------------------------- decoding

@dataclass(frozen=True)
class DeliverPdu:
    """An SMS-DELIVER: who sent it, the text, and its concatenation info if any."""

    sender: str
    text: str
    timestamp: datetime | None
    concat_ref: int | None = None
    part: int = 1
    parts: int = 1


@dataclass(frozen=True)
class StatusReportPdu:
    """An SMS-STATUS-REPORT (23.040 9.2.2.3)."""

    reference: int        # TP-MR of the message it reports on
    recipient: str
    status: int           # TP-ST

    @property
    def delivered(self) -> bool:
        return self.status <= 0x02           # received, forwarded unconfirmed, replaced

    @property
    def permanent(self) -> bool:
        """False while the service centre is still trying (0x20..0x3F)."""
        return not 0x20 <= self.status <= 0x3F


TP_STATUS_TEXT = {
    0x00: "received by the phone", 0x01: "forwarded, delivery not confirmed", 0x02: "replaced",
    0x20: "congestion, still trying", 0x21: "phone busy, still trying", 0x22: "no response, still trying",
    0x23: "service rejected, still trying", 0x24: "quality of service unavailable, still trying",
    0x25: "error in phone, still trying", 0x40: "remote procedure error", 0x41: "incompatible destination",
    0x42: "connection rejected by phone", 0x43: "not obtainable", 0x44: "quality of service unavailable",
    0x45: "no interworking available", 0x46: "validity period expired", 0x47: "deleted by sender",
    0x48: "deleted by service centre", 0x49: "message does not exist", 0x60: "congestion, gave up",
    0x61: "phone busy, gave up", 0x62: "no response, gave up", 0x63: "service rejected, gave up",
    0x64: "quality of service unavailable, gave up", 0x65: "error in phone, gave up",
}


def status_text(status: int) -> str:
    """Words for a TP-ST value."""
    return TP_STATUS_TEXT.get(status, f"status 0x{status:02X}")


def _skip_smsc(pdu: bytes) -> int:
    return 1 + pdu[0]


def _timestamp(raw: bytes) -> datetime | None:
    try:
        d = [((b & 0x0F) * 10 + (b >> 4)) for b in raw[:6]]
        tzb = raw[6]
        quarters = (tzb & 0x07) * 10 + (tzb >> 4)
        offset = timedelta(minutes=15 * quarters) * (-1 if tzb & 0x08 else 1)
        return datetime(2000 + d[0], d[1], d[2], d[3], d[4], d[5], tzinfo=timezone(offset))
    except (ValueError, IndexError):
        return None


def _hex(pdu_hex: str) -> bytes:
    try:
        return bytes.fromhex(pdu_hex.strip())
    except ValueError:
        raise SmsEncodingError(f"PDU is not hexadecimal: {pdu_hex[:40]!r}") from None


def is_status_report(pdu_hex: str) -> bool:
    """Is this stored PDU (SMSC field first) an SMS-STATUS-REPORT (TP-MTI 10)? Else a deliver."""
    try:
        pdu = _hex(pdu_hex)
        return pdu[_skip_smsc(pdu)] & 0x03 == 0x02
    except (SmsEncodingError, IndexError):
        return False


def decode_deliver(pdu_hex: str) -> DeliverPdu:
    """Decode an SMS-DELIVER PDU as read with AT+CMGR in PDU mode (SMSC field first)."""
    pdu = _hex(pdu_hex)
    try:
        pos = _skip_smsc(pdu)
        first = pdu[pos]
        if first & 0x03 != 0x00:
            raise SmsEncodingError(f"not an SMS-DELIVER (first octet 0x{first:02X})")
        sender, pos = _decode_address(pdu, pos + 1)
        dcs = pdu[pos + 1]
        ts = _timestamp(pdu[pos + 2: pos + 9])
        udl = pdu[pos + 9]
        ud = pdu[pos + 10:]
        return _decode_user_data(sender, ts, dcs, udl, ud, bool(first & 0x40))
    except IndexError:
        raise SmsEncodingError("SMS-DELIVER PDU is truncated") from None


def _decode_user_data(sender: str, ts: datetime | None, dcs: int, udl: int, ud: bytes,
                      udhi: bool) -> DeliverPdu:
    alphabet = _alphabet(dcs)
    header_len = (ud[0] + 1) if udhi and ud else 0
    ref, part, parts = _concat_info(ud[1:header_len]) if header_len else (None, 1, 1)
    if alphabet == 0:
        fill = (7 - (header_len * 8) % 7) % 7
        skip = (header_len * 8 + fill) // 7
        septets = unpack_septets(ud[header_len:], max(udl - skip, 0), fill)
        text = decode_gsm7(septets)
    elif alphabet == 2:
        text = ud[header_len:udl].decode("utf-16-be", errors="replace")
    else:
        text = ud[header_len:udl].decode("latin-1")
    return DeliverPdu(sender, text, ts, ref, part, parts)


def _alphabet(dcs: int) -> int:
    """TP-DCS -> 0 GSM-7, 1 8-bit, 2 UCS-2 (23.038 section 4)."""
    group = dcs & 0xF0
    if dcs & 0x80 == 0x00:
        # 00xx general coding, 01xx the same with automatic deletion: bits 3-2 are the alphabet.
        return (dcs >> 2) & 0x03
    if group == 0xE0:
        return 2
    if group == 0xF0:
        return 1 if dcs & 0x04 else 0
    return 0


def _concat_info(ies: bytes) -> tuple[int | None, int, int]:
    """Find the concatenation IE (8-bit 0x00 or 16-bit 0x08) in a UDH."""
    i = 0
    while i + 1 < len(ies):
        iei, ln = ies[i], ies[i + 1]
        data = ies[i + 2: i + 2 + ln]
        if iei == 0x00 and ln == 3:
            return data[0], data[2], data[1]
        if iei == 0x08 and ln == 4:
            return (data[0] << 8) | data[1], data[3], data[2]
        i += 2 + ln
    return None, 1, 1


def decode_status_report(pdu_hex: str, has_smsc: bool = True) -> StatusReportPdu:
    """Decode an SMS-STATUS-REPORT (+CDS in PDU mode).

    Modems differ on whether +CDS carries the SMSC field; HAS_SMSC says so,
    and when it is wrong the first octet gives it away, so both are tried.
    """
    pdu = _hex(pdu_hex)
    for start in ((_skip_smsc(pdu), 0) if has_smsc else (0, _skip_smsc(pdu))):
        try:
            if start >= len(pdu) or pdu[start] & 0x03 != 0x02:
                continue
            mr = pdu[start + 1]
            recipient, pos = _decode_address(pdu, start + 2)
            status = pdu[pos + 14]        # after SCTS (7) and DT (7)
            return StatusReportPdu(mr, recipient, status)
        except IndexError:
            continue
    raise SmsEncodingError(f"not an SMS-STATUS-REPORT PDU: {pdu_hex[:40]!r}")
