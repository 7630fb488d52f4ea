"""Network registration as evidence: +CREG, +CGREG and +CEREG answers (3GPP TS 27.007 7.2, 10.1.20, 10.1.22).

A modem registers separately per domain: circuit-switched (+CREG: GSM/UMTS
voice and classic SMS), packet-switched (+CGREG: GPRS/UMTS data) and EPS
(+CEREG: LTE). Since 3G was switched off, LTE sticks often report +CREG "not
registered" while attached on LTE and sending SMS fine (over SGs or IMS). So
no single answer is a gate: any registered domain counts, unclear answers
leave the modem usable, and the result of a send decides (see modem.py).

Answer forms met in the field, all parsed here:

    +CREG: <n>,<stat>                              read answer (27.007)
    +CREG: <n>,<stat>,<lac>,<ci>[,<AcT>...]        read answer after AT+CREG=2
    +CEREG: <n>,<stat>,<tac>,<ci>,<AcT>[,...]      read answer, EPS
    +CREG: <stat>[,<lac>,<ci>[,<AcT>]]             unsolicited (no <n>)
    +CREG: <stat>,<lac>,<ci>                       the odd three-field read answer
                                                   (ofono-phonesim: "+CREG: 1,0,1")
    +CREG: <stat>                                  a lone number
"""
from __future__ import annotations

import enum
import re
from dataclasses import dataclass


class Domain(enum.StrEnum):
    """Where a modem can be registered; the value names it in health and status."""

    CS = "cs"      # circuit-switched: +CREG
    PS = "ps"      # packet-switched (GPRS/UMTS): +CGREG
    EPS = "eps"    # LTE: +CEREG

    @property
    def command(self) -> str:
        return {Domain.CS: "+CREG", Domain.PS: "+CGREG", Domain.EPS: "+CEREG"}[self]

    @property
    def label(self) -> str:
        return {Domain.CS: "CS (+CREG)", Domain.PS: "PS (+CGREG)", Domain.EPS: "LTE (+CEREG)"}[self]


class Verdict(enum.StrEnum):
    """What all answers together say; never a gate on its own."""

    REGISTERED = "registered"
    NOT_REGISTERED = "not registered"
    UNCLEAR = "registration unclear"


# 27.007 <stat>, the same table for the three domains.
STATES = {0: "not registered, not searching", 1: "registered, home network", 2: "not registered, searching",
          3: "registration denied", 4: "unknown", 5: "registered, roaming",
          6: "registered for SMS only, home network", 7: "registered for SMS only, roaming",
          8: "attached for emergency bearer services only", 9: "registered, CSFB not preferred, home network",
          10: "registered, CSFB not preferred, roaming"}
REGISTERED_STATES = frozenset({1, 5, 6, 7, 9, 10})
# Clear "no": the modem knows it is not on a network (as opposed to 4 "unknown" or 8).
UNREGISTERED_STATES = frozenset({0, 2, 3})
NOT_SUPPORTED = "not supported"


@dataclass(frozen=True)
class Registration:
    """One domain's answer. `stat` None: the answer could not be read."""

    domain: Domain
    stat: int | None
    area: str = ""         # <lac> or <tac>, hex as the modem gave it
    cell: str = ""         # <ci>
    act: int | None = None
    raw: str = ""

    @property
    def registered(self) -> bool:
        return self.stat in REGISTERED_STATES

    @property
    def words(self) -> str:
        if self.stat is None:
            return f"unreadable answer {self.raw!r}"
        return STATES.get(self.stat, f"state {self.stat} (not in 27.007)")


_FIELD = re.compile(r'\s*("[^"]*"|[^,]*)\s*(?:,|$)')


def _fields(text: str) -> list[str]:
    text = text.strip()
    if not text:
        return []
    return [m.group(1) for m in _FIELD.finditer(text) if m.start() < len(text)]


def _number(field: str) -> int | None:
    return int(field) if re.fullmatch(r"\d{1,3}", field) else None


def _stat_first(fields: list[str], urc: bool) -> bool:
    """Does the answer start with <stat> (URC form) rather than <n>,<stat>?"""
    if urc or len(fields) in (1, 3):
        return True
    # "<n>,<stat>,<lac>,<ci>" has a plain number second; "<stat>,<lac>,..." a quoted or hex area.
    return len(fields) >= 4 and (fields[1].startswith('"') or _number(fields[1]) is None)


def parse(domain: Domain, text: str, urc: bool = False) -> Registration:
    """TEXT after '+CREG:' (or +CGREG:/+CEREG:) -> Registration. URC: no <n> field."""
    fields = _fields(text)
    if not fields:
        return Registration(domain, None, raw=text)
    first = _stat_first(fields, urc)
    stat_i = 0 if first else 1
    stat = _number(fields[stat_i])
    rest = [f.strip('"') for f in fields[stat_i + 1:]]
    area, cell = (rest + ["", ""])[:2]
    act = _number(rest[2]) if len(rest) > 2 else None
    if stat is not None and stat > 11:
        stat = None
    return Registration(domain, stat, area, cell, act, raw=text)


def verdict(answers: dict[Domain, Registration], operator: str = "") -> Verdict:
    """Any registered domain counts. All answers a clear no: not registered, unless the
    modem names an operator all the same (contradictory). Nothing readable: unclear."""
    if any(r.registered for r in list(answers.values())):   # a copy: a URC may change it meanwhile
        return Verdict.REGISTERED
    readable = [r for r in list(answers.values()) if r.stat is not None]
    if not readable or any(r.stat not in UNREGISTERED_STATES for r in readable) or operator:
        return Verdict.UNCLEAR
    return Verdict.NOT_REGISTERED


def registered_flag(v: Verdict) -> bool | None:
    """Verdict -> DeviceHealth.registered: True, False, or None when unclear."""
    return {Verdict.REGISTERED: True, Verdict.NOT_REGISTERED: False}.get(v)


def per_domain(answers: dict[Domain, Registration]) -> dict[str, str]:
    """Each domain's state in words, for health detail, `status --json` and the device page."""
    return {d.value: answers[d].words if d in answers else NOT_SUPPORTED for d in Domain}


def summary(answers: dict[Domain, Registration]) -> str:
    """'LTE (+CEREG): registered, home network; CS (+CREG): not registered, not searching'."""
    return "; ".join(f"{d.label}: {answers[d].words}" for d in Domain if d in answers) or \
        "the modem answers none of +CREG?, +CGREG?, +CEREG?"
