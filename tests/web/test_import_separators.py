"""A member list as a Belgian coordinator has it (review 17b): Excel set to nl-BE / fr-BE saves "CSV" with
semicolons, and cells pasted from a spreadsheet into the text box are separated by tabs. Both were
refused as "no phone column"; the bad-rows download keeps the file's own separator."""
from __future__ import annotations

import pytest

from .conftest import csrf_token, network_id
from .test_import_words import import_form

SEMICOLON = "name;phone;channel;lang\r\nJan Peeters;0470 11 22 33;sms;nl\r\nMarie, Dubois;12;sms;fr\r\n"
TABS = "name\tphone\tchannel\tlang\nJan Peeters\t0470 11 22 33\tsms\tnl\nMarie, Dubois\t12\tsms\tfr\n"


@pytest.mark.parametrize("text", [SEMICOLON, TABS], ids=["semicolon", "tab"])
def test_a_semicolon_or_tab_separated_list_is_read(coordinator, world, text):
    resp = coordinator.post("/members/import", data=import_form(coordinator, world, text))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200, html[:2000]
    rows = html.split('id="import-rows"')[1]
    assert "Jan Peeters" in rows and "+32470112233" in rows
    assert "Line 3" in html                          # Marie's number "12" is refused, on her line


@pytest.mark.parametrize("text, sep", [(SEMICOLON, ";"), (TABS, "\t")], ids=["semicolon", "tab"])
def test_bad_rows_download_keeps_the_files_separator(coordinator, world, text, sep):
    resp = coordinator.post("/members/import/bad-rows.csv", data={
        "csrf_token": csrf_token(coordinator), "network": str(network_id(world, "Kerkwijk")), "text": text})
    lines = resp.get_data(as_text=True).splitlines()
    assert lines[0].split(sep)[:2] == ["name", "phone"]
    assert lines[1].split(sep)[:3] == ["Marie, Dubois", "12", "sms"]
    assert len(lines) == 2


def test_a_comma_list_still_reads(coordinator, world):
    html = coordinator.post("/members/import", data=import_form(
        coordinator, world, "name,phone\nJan; de tweede,0470 11 22 33\n")).get_data(as_text=True)
    assert "Jan; de tweede" in html.split('id="import-rows"')[1]
