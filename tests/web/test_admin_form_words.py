"""The admin forms' refusals (users, networks, API tokens) in the page language (review 17b): the store's
English ("expected 1-80 letters…", "missing; give the network's name", "expected 1 to 80 characters",
"a user called 'agent' already exists", "shorter than 10 characters") reached nl/fr pages."""
from __future__ import annotations

import pytest

from .conftest import csrf_token
from .test_import_words import in_language

ENGLISH = ["expected", "missing;", "already exists", "shorter than", "longer than", "is not one of"]
GOOD_PASSWORD = "een-lang-wachtwoord-1"


def refused(client, lang, url, **form):
    resp = in_language(client, lang).post(url, data={"csrf_token": csrf_token(client), **form})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400
    for english in ENGLISH:
        assert english not in html, english
    return html


USER = {"username": "nieuw", "password": GOOD_PASSWORD, "role": "police"}


@pytest.mark.parametrize("form, lang, words", [
    ({**USER, "username": "met spatie"}, "nl", "1 tot 80 letters, cijfers"),
    ({**USER, "username": "met spatie"}, "fr", "1 à 80 lettres, chiffres"),
    ({**USER, "username": "agent"}, "nl", "Er bestaat al een gebruiker “agent”"),
    ({**USER, "username": "agent"}, "fr", "Un utilisateur « agent » existe déjà"),
    ({**USER, "password": "kort"}, "nl", "Minstens 10 tekens"),
    ({**USER, "password": "kort"}, "fr", "Au moins 10 caractères"),
    ({**USER, "role": "sheriff"}, "nl", "Kies een rol"),
])
def test_user_form_refusals_in_the_page_language(admin, world, form, lang, words):
    assert words in refused(admin, lang, "/admin/users/new", **form)


@pytest.mark.parametrize("form, lang, words", [
    ({"name": ""}, "nl", "Geef het netwerk een naam"),
    ({"name": ""}, "fr", "Donnez un nom au réseau"),
    ({"name": "Lindeknoppen"}, "nl", "Er bestaat al een netwerk “Lindeknoppen”"),
    ({"name": "Lindeknoppen"}, "fr", "Un réseau « Lindeknoppen » existe déjà"),
    ({"name": "x" * 200}, "nl", "Hoogstens 120 tekens"),
])
def test_network_form_refusals_in_the_page_language(admin, world, form, lang, words):
    assert words in refused(admin, lang, "/networks/new", **form)


@pytest.mark.parametrize("lang, words", [("nl", "1 tot 80 tekens"), ("fr", "1 à 80 caractères")])
def test_token_form_refusal_in_the_page_language(admin, world, lang, words):
    assert words in refused(admin, lang, "/admin/tokens", name="")
