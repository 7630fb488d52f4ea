"""Store, people.py: members, their numbers and channels, the CSV import."""
from __future__ import annotations

import pytest

from gatewayd.errors import InputError
from gatewayd.model import Member, RowProblem
from gatewayd.store import ImportFailed
from tests.unit.store.conftest import messages


# ---------------------------------------------------------------- members
def test_member_number_is_normalised_to_e164(store, net):
    m = store.add_member(net, "0470 12 34 56")
    assert m.phone == "+32470123456"


def test_invalid_number_is_refused_with_reason(store, net):
    with pytest.raises(InputError) as exc:
        store.add_member(net, "0470 12")
    assert exc.value.field == "phone" and "not a valid number" in exc.value.reason


def test_member_is_unique_per_number_across_networks(store, net):
    store.add_network("M")
    a = store.add_member(net, "0470123456")
    b = store.add_member("M", "+32 470 12 34 56")
    assert a.id == b.id
    with store.session() as s:
        assert len(s.get(Member, a.id).networks) == 2


def test_same_member_twice_in_one_network_is_refused(store, net):
    store.add_member(net, "0470123456")
    with pytest.raises(InputError, match="already a member"):
        store.add_member(net, "0470123456")


def test_landline_defaults_to_voice_and_refuses_sms(store, net):
    assert store.add_member(net, "016 12 34 56").channel == "voice"
    with pytest.raises(InputError) as exc:
        store.add_member(net, "016 12 34 57", channel="sms")
    assert exc.value.field == "channel" and "landline" in exc.value.reason


# ---------------------------------------------------------------- CSV import
def test_csv_import_is_all_or_nothing(store, net):
    csv = "name,phone,channel,lang\nAn,0470000001,sms,nl\nBad,12,sms,nl\nCe,0470000003,,fr\n"
    with pytest.raises(ImportFailed) as exc:
        store.import_members(net, csv)
    assert [str(e) for e in exc.value.errors] == ["line 3: phone: '12' is not a valid number (checked for region BE)"]
    assert messages(store) == [] and store.member_by_number("+32470000001") is None


def test_csv_import_skip_bad_imports_the_good_rows(store, net):
    csv = "name,phone,channel,lang\nAn,0470000001,sms,nl\nBad,12,sms,nl\nCe,0470000003,,xx\n"
    imported, errors = store.import_members(net, csv, skip_bad=True)
    assert imported == 1 and len(errors) == 2 and "lang" in str(errors[1]) and errors[1].problem == RowProblem.LANG_UNKNOWN


@pytest.mark.parametrize("text, number, channel", [
    ("name,phone,tel\nJan,0470123456,050123456\n", "+32470123456", "sms"),         # the mobile, not the landline
    ("naam;gsm;telefoon\nJan;0470123456;050123456\n", "+32470123456", "sms"),
    ("naam;telefoon;gsm\nJan;050123456;\n", "+3250123456", "voice"),              # an empty second column
    ("name,phone,straat,nummer\nJan,0470123456,Kerkstraat,12\n", "+32470123456", "sms"),  # a house number
])
def test_csv_import_reads_the_first_column_that_means_a_field(store, text, number, channel):
    """Review of review 17b: with two columns meaning 'phone' the last one silently won, so a member's
    landline replaced their mobile, or a house number ("nummer") was read as the phone."""
    rows, errors = store.parse_member_csv(text)
    assert errors == [] and [(r.phone, r.channel) for r in rows] == [(number, channel)]


def test_csv_import_reads_the_first_language_column(store):
    rows, errors = store.parse_member_csv("Naam;Tel;Taal;Language\nJan;0470123456;fr;Frans\n")
    assert errors == [] and rows[0].lang == "fr"
