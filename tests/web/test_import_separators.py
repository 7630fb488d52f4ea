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


# A blank line (a paste with an empty line between blocks) made every later "Line N" point one line too
# early: the rows were counted, not the file's lines (review 17b).
WITH_BLANKS = "name,phone\n\nEen,0476 10 10 10\n\n\nFout,12\n\"Twee\nregels\",13\nDrie,0476 30 30 30\n"


def test_row_errors_name_the_files_own_line(coordinator, world):
    html = coordinator.post("/members/import", data=import_form(coordinator, world, WITH_BLANKS)).get_data(
        as_text=True)
    assert "Line 6" in html and "Line 7" in html          # "Fout,12" is line 6; the two-line row starts on 7
    assert "Line 4" not in html and "Line 5" not in html


def test_bad_rows_download_with_blank_lines_gives_the_bad_rows(coordinator, world):
    resp = coordinator.post("/members/import/bad-rows.csv", data={
        "csrf_token": csrf_token(coordinator), "network": str(network_id(world, "Kerkwijk")), "text": WITH_BLANKS})
    import csv
    import io
    rows = list(csv.reader(io.StringIO(resp.get_data(as_text=True))))
    assert [r[:2] for r in rows] == [["name", "phone"], ["Fout", "12"], ["Twee\nregels", "13"]]


# A coordinator's own spreadsheet heads its columns in Dutch or French: refused as "no phone column" (review 17b).
@pytest.mark.parametrize("header", ["Naam;Telefoon;Kanaal;Taal", "nom;téléphone;canal;langue",
                                    "Name;Telefon;Kanal;Sprache", "naam;gsm;kanaal;taal", "Nom;GSM;Canal;Langue"])
def test_columns_named_in_dutch_french_or_german_are_read(coordinator, world, header):
    text = f"{header}\nJan Peeters;0470 11 22 33;sms;fr\n"
    html = coordinator.post("/members/import", data=import_form(coordinator, world, text)).get_data(as_text=True)
    rows = html.split('id="import-rows"')[1]
    assert "Jan Peeters" in rows and "+32470112233" in rows and "French" in rows


@pytest.mark.parametrize("lang, column", [("nl", "fout"), ("fr", "erreur"), ("en", "error")])
def test_bad_rows_download_heads_its_error_column_in_the_page_language(coordinator, world, lang, column):
    """Review 17b: the rows' errors were in the page language but their column was headed "error"."""
    from .test_import_words import in_language
    resp = in_language(coordinator, lang).post("/members/import/bad-rows.csv", data={
        "csrf_token": csrf_token(coordinator), "network": str(network_id(world, "Kerkwijk")), "text": SEMICOLON})
    assert resp.get_data(as_text=True).splitlines()[0].split(";")[-1] == column
