"""Phone numbers: parse, validate and normalise to E.164 with `phonenumbers`."""
from __future__ import annotations

from dataclasses import dataclass

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType

from .errors import InputError
from .vocabulary import RowProblem

DEFAULT_REGION = "BE"

_PARSE_REASONS = {
    NumberParseException.INVALID_COUNTRY_CODE: ("unknown country code", RowProblem.PHONE_UNKNOWN_COUNTRY),
    NumberParseException.NOT_A_NUMBER: ("not a phone number", RowProblem.PHONE_NOT_A_NUMBER),
    NumberParseException.TOO_SHORT_AFTER_IDD: ("too short after the international prefix", RowProblem.PHONE_TOO_SHORT),
    NumberParseException.TOO_SHORT_NSN: ("too short", RowProblem.PHONE_TOO_SHORT),
    NumberParseException.TOO_LONG: ("too long", RowProblem.PHONE_TOO_LONG),
}


@dataclass(frozen=True)
class PhoneNumber:
    e164: str
    mobile: bool      # can receive SMS
    landline: bool    # fixed line: voice only


def parse_phone(raw: str, region: str = DEFAULT_REGION, field: str = "phone") -> PhoneNumber:
    """Parse RAW (e.g. '0470 12 34 56', '+32 470 12 34 56'); raise InputError saying why."""
    text = (raw or "").strip()
    if not text:
        raise InputError(field, "missing; give a number such as 0470 12 34 56 or +32470123456",
                         RowProblem.PHONE_MISSING)
    try:
        num = phonenumbers.parse(text, region)
    except NumberParseException as exc:
        reason, problem = _PARSE_REASONS.get(exc.error_type, ("not a valid number", RowProblem.PHONE_INVALID))
        raise InputError(field, f"{text!r} is {reason}", problem, {"number": text}) from None
    if not phonenumbers.is_valid_number(num):
        checked = phonenumbers.region_code_for_number(num) or region
        raise InputError(field, f"{text!r} is not a valid number (checked for region {checked})",
                         RowProblem.PHONE_INVALID, {"number": text, "region": checked})
    kind = phonenumbers.number_type(num)
    mobile = kind in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)
    landline = kind in (PhoneNumberType.FIXED_LINE, PhoneNumberType.VOIP)
    return PhoneNumber(phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164), mobile, landline)


def normalise(raw: str, region: str = DEFAULT_REGION) -> str:
    """E.164 form of RAW, or RAW unchanged when it cannot be parsed (for matching reports)."""
    try:
        return phonenumbers.format_number(phonenumbers.parse(raw, region), phonenumbers.PhoneNumberFormat.E164)
    except NumberParseException:
        return raw


def redact(number: str) -> str:
    """'+32470123456' -> '+32470****56': enough to tell numbers apart in logs, not to call."""
    if len(number) <= 6:
        return "*" * len(number)
    return number[:-6] + "****" + number[-2:]
