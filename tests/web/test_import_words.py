"""CSV import in the page language: row errors and the all-or-nothing refusal are translated
(the store stays free of Flask: it returns a problem code and its values per row); the preview
shows each number as it was typed, beside the number it becomes."""
from __future__ import annotations

import pytest

from .conftest import csrf_token, network_id

CSV_BAD = ("name,phone,channel,lang\nEen,0476 10 10 10,sms,nl\nFout,12,sms,nl\n"
           "Twee,0476 20 20 20,,xx\nVast,02 511 11 11,sms,nl\nDubbel,+32 476 10 10 10,sms,nl\n")


def in_language(client, lang):
    with client.session_transaction() as sess:
        sess["lang"] = lang
    return client


def import_form(client, world, text, step="preview", **kw):
    return {"csrf_token": csrf_token(client), "network": str(network_id(world, "Kerkwijk")), "text": text,
            "step": step, **kw}


@pytest.mark.parametrize("lang, words", [
    ("nl", ["Regel 3", "bestaat niet", "Regel 4", "“xx”", "Regel 5", "vaste lijn", "Regel 6", "regel 2"]),
    ("fr", ["Ligne 3", "n’existe pas", "Ligne 4", "« xx »", "Ligne 5", "fixe", "Ligne 6", "ligne 2"]),
])
def test_row_errors_are_in_the_page_language(coordinator, world, lang, words):
    html = in_language(coordinator, lang).post(
        "/members/import", data=import_form(coordinator, world, CSV_BAD)).get_data(as_text=True)
    assert "line 3: phone" not in html and "is not one of" not in html
    for w in words:
        assert w in html, w


@pytest.mark.parametrize("lang, words", [("nl", "niets geïmporteerd"), ("fr", "rien n’a été importé")])
def test_all_or_nothing_refusal_is_in_the_page_language(coordinator, world, lang, words):
    resp = in_language(coordinator, lang).post(
        "/members/import", data=import_form(coordinator, world, CSV_BAD, step="import"))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and words in html and "nothing imported" not in html


def test_preview_shows_the_number_as_typed(coordinator, world):
    html = coordinator.post("/members/import", data=import_form(
        coordinator, world, "name,phone\nEen,0476 10 10 10\n")).get_data(as_text=True)
    rows = html.split('id="import-rows"')[1]
    assert "0476 10 10 10" in rows and "+32476101010" in rows


def test_member_form_words_the_stores_problem_in_the_page_language(coordinator, world):
    resp = in_language(coordinator, "fr").post("/members/new", data={
        "csrf_token": csrf_token(coordinator), "phone": "12", "name": "X", "channel": "", "lang": "nl",
        "networks": [str(network_id(world, "Kerkwijk"))]})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "le numéro « 12 » n’existe pas" in html and "not a valid number" not in html


# ---------------------------------------------------------------------- the file as a whole (session 3)
NO_PHONE_COLUMN = "naam,adres\nEen,Kerkstraat 1\n"   # (Dutch headers are read since review 17b: "telefoon" is a phone column)
UNREADABLE = "name,phone\nEen,0476 10\r10 10\n"      # a lone CR inside a field: the csv module gives up


@pytest.mark.parametrize("lang, words", [
    ("nl", ["geen kolom “phone”", "name,phone,channel,lang"]),
    ("fr", ["pas de colonne « phone »", "name,phone,channel,lang"]),
])
def test_a_file_without_a_phone_column_is_refused_in_the_page_language(coordinator, world, lang, words):
    resp = in_language(coordinator, lang).post("/members/import",
                                               data=import_form(coordinator, world, NO_PHONE_COLUMN))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "expected the header" not in html
    for w in words:
        assert w in html, w


@pytest.mark.parametrize("lang, words", [("nl", "geen leesbaar CSV-bestand"), ("fr", "pas un fichier CSV lisible")])
def test_an_unreadable_file_is_refused_in_the_page_language(coordinator, world, lang, words):
    resp = in_language(coordinator, lang).post("/members/import", data=import_form(coordinator, world, UNREADABLE))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and words in html and "not a readable CSV file" not in html


def test_the_cli_keeps_the_stores_english_for_the_file(world):
    from gatewayd.errors import InputError
    with pytest.raises(InputError, match="no 'phone' column; expected the header name,phone,channel,lang"):
        world.parse_member_csv(NO_PHONE_COLUMN)
    with pytest.raises(InputError, match="not a readable CSV file"):
        world.parse_member_csv(UNREADABLE)


def test_preview_words_the_language(coordinator, world):
    """Review 17b: the preview table showed the code ("nl") where the members table words it."""
    html = in_language(coordinator, "fr").post("/members/import", data=import_form(
        coordinator, world, "name,phone,channel,lang\nEen,0476 10 10 10,sms,nl\n")).get_data(as_text=True)
    row = html.split('id="import-rows"')[1].split("</tr>")[1]
    assert "néerlandais" in row and ">nl<" not in row
