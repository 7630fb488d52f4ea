"""Every 27.007 registration answer form, states 0-10, and what they add up to."""
from __future__ import annotations

import pytest

from gatewayd.channels.registration import Domain, Registration, Verdict, parse, per_domain, verdict

CS, PS, EPS = Domain.CS, Domain.PS, Domain.EPS


@pytest.mark.parametrize("text,urc,stat,area,cell,act", [
    ("0,1", False, 1, "", "", None),                                   # <n>,<stat>
    ("2,5,\"00C3\",\"0010A5B1\"", False, 5, "00C3", "0010A5B1", None),  # <n>,<stat>,<lac>,<ci>
    ("2,1,\"00C3\",\"0010A5B1\",7", False, 1, "00C3", "0010A5B1", 7),   # ... with AcT
    ("2,1,00C3,0010A5B1,7", False, 1, "00C3", "0010A5B1", 7),           # unquoted lac/ci
    ("1,0,1", False, 1, "0", "1", None),                               # the odd three-field form (phonesim)
    ("1,\"00C3\",\"0010A5B1\"", False, 1, "00C3", "0010A5B1", None),    # three fields, quoted
    ("5", False, 5, "", "", None),                                     # a lone <stat>
    ("1,\"00C3\",\"0010A5B1\",7", False, 1, "00C3", "0010A5B1", 7),     # URC form given as an answer
    ("1", True, 1, "", "", None),                                      # URC
    ("5,\"1A2B\",\"01C4F201\",7", True, 5, "1A2B", "01C4F201", 7),      # URC with location
    (" 0 , 2 ", False, 2, "", "", None),                               # spaces
])
def test_answer_forms(text, urc, stat, area, cell, act):
    r = parse(CS, text, urc=urc)
    assert (r.stat, r.area, r.cell, r.act) == (stat, area, cell, act)


def test_eps_answer_with_reject_cause_and_timers():
    r = parse(EPS, '4,1,"2F01","0A1B2C3D",7,,,"00100100","01000111"')
    assert (r.stat, r.area, r.act, r.registered) == (1, "2F01", 7, True)


def test_cgreg_answer_with_rac():
    r = parse(PS, '2,5,"00C3","0010A5B1",2,"01"')
    assert (r.stat, r.act, r.registered) == (5, 2, True)


@pytest.mark.parametrize("stat,registered", [(0, False), (1, True), (2, False), (3, False), (4, False),
                                             (5, True), (6, True), (7, True), (8, False), (9, True),
                                             (10, True)])
def test_states_0_to_10(stat, registered):
    r = parse(EPS, f"0,{stat}")
    assert r.registered is registered and "state" not in r.words


@pytest.mark.parametrize("text", ["", "x", "0,abc", "0,99", '"oops"'])
def test_unreadable_answers_have_no_state(text):
    assert parse(CS, text).stat is None


def reg(domain, stat):
    return Registration(domain, stat)


def test_any_registered_domain_counts():
    lte_only = {CS: reg(CS, 0), PS: reg(PS, 0), EPS: reg(EPS, 1)}
    assert verdict(lte_only) is Verdict.REGISTERED


def test_sms_only_and_csfb_not_preferred_count():
    assert verdict({EPS: reg(EPS, 6)}) is Verdict.REGISTERED
    assert verdict({CS: reg(CS, 0), EPS: reg(EPS, 10)}) is Verdict.REGISTERED


def test_every_domain_clearly_not_registered():
    assert verdict({CS: reg(CS, 0), EPS: reg(EPS, 2)}) is Verdict.NOT_REGISTERED
    assert verdict({CS: reg(CS, 3)}) is Verdict.NOT_REGISTERED


def test_unknown_emergency_only_unreadable_or_no_answer_is_unclear():
    assert verdict({CS: reg(CS, 4)}) is Verdict.UNCLEAR
    assert verdict({CS: reg(CS, 0), EPS: reg(EPS, 8)}) is Verdict.UNCLEAR
    assert verdict({CS: reg(CS, None)}) is Verdict.UNCLEAR
    assert verdict({}) is Verdict.UNCLEAR


def test_operator_named_while_not_registered_is_contradictory():
    assert verdict({CS: reg(CS, 0)}, operator="Proximus") is Verdict.UNCLEAR


def test_per_domain_words_name_unsupported_domains():
    assert per_domain({CS: reg(CS, 0), EPS: reg(EPS, 1)}) == {
        "cs": "not registered, not searching", "ps": "not supported", "eps": "registered, home network"}
