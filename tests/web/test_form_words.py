"""The store's refusals of an alert text, a template and an approval, worded in the page language
(review 17b): the store names the problem (model.FormProblem) and its values, web/form_words.py words
it; the API and the CLI keep the store's English."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest

from gatewayd.model import Alert, utcnow

from .conftest import csrf_token, login_as
from .test_alerts import alert_count
from .test_compose_templates import burglary_form
from .test_import_words import in_language

# What the store says in English: none of it may reach an nl or fr page.
ENGLISH = ["still holds the placeholder", "fill it in", "only invisible characters", "characters; at most",
           "expected 1 to", "a template needs a text", "is not one of", "before it was approved",
           "not waiting for approval", "contains a NUL"]


def no_english(html: str) -> str:
    for english in ENGLISH:
        assert english not in html, english
    return html


@pytest.mark.parametrize("text", ["inbraak in [ straat ]", "inbraak in ［straat］", "inbraak in 【straat】"])
@pytest.mark.parametrize("lang, words", [("nl", "De tekst bevat nog het invulveld [straat]"),
                                         ("fr", "Le texte contient encore le champ [straat]")])
def test_a_loosely_bracketed_slot_is_refused_in_the_page_language(police, world, text, lang, words):
    form = burglary_form(police, world, template="", text_fr="", text_nl=text)
    resp = in_language(police, lang).post("/alerts/confirm", data=form)
    html = no_english(resp.get_data(as_text=True))
    assert resp.status_code == 400 and words in html and 'id="error-text_nl"' in html
    assert alert_count(world) == 0


@pytest.mark.parametrize("lang, words", [("nl", "alleen onzichtbare tekens"), ("fr", "que des caractères invisibles")])
def test_an_invisible_text_is_refused_in_the_page_language(police, world, lang, words):
    form = burglary_form(police, world, template="", text_fr="", text_nl="\u200b\u200b")
    resp = in_language(police, lang).post("/alerts/confirm", data=form)
    assert resp.status_code == 400 and words in no_english(resp.get_data(as_text=True))


@pytest.mark.parametrize("lang, words", [("nl", "2000 tekens; hoogstens 1000"), ("fr", "2000 caractères ; au plus 1000")])
def test_a_text_too_long_is_refused_in_the_page_language(police, world, lang, words):
    form = burglary_form(police, world, template="", text_fr="", text_nl="x" * 2000)
    resp = in_language(police, lang).post("/alerts/confirm", data=form)
    assert resp.status_code == 400 and words in no_english(resp.get_data(as_text=True))


def _template_id(admin) -> str:
    return re.findall(r"/admin/templates/(\d+)", admin.get("/admin/templates").get_data(as_text=True))[0]


@pytest.mark.parametrize("form, lang, words", [
    ({"title": "", "text_nl": "x"}, "nl", "1 tot 120 tekens"),
    ({"title": "", "text_nl": "x"}, "fr", "1 à 120 caractères"),
    ({"title": "Inbraak"}, "nl", "Een sjabloon heeft een tekst nodig"),
    ({"title": "Inbraak"}, "fr", "Un modèle a besoin d’un texte"),
    ({"title": "Inbraak", "category": "urgentx", "text_nl": "x"}, "nl", "Kies een categorie."),
])
def test_template_form_refusals_in_the_page_language(admin, world, form, lang, words):
    tid = _template_id(admin)
    data = {"csrf_token": csrf_token(admin), "category": "urgent", **form}
    resp = in_language(admin, lang).post(f"/admin/templates/{tid}", data=data)
    assert resp.status_code == 400 and words in no_english(resp.get_data(as_text=True))


@pytest.mark.parametrize("lang, words", [("nl", "verliep om"), ("fr", "a expiré à")])
def test_approving_an_expired_alert_says_so_in_the_page_language_and_local_time(approval, lang, words):
    c, store, aid = approval
    with store.session.begin() as s:
        alert = s.get(Alert, aid)
        alert.expires_at = expired = utcnow().replace(hour=10, minute=30, second=0, microsecond=0) - timedelta(days=1)
    login_as(c, store, "agent2")
    html = in_language(c, lang).post(f"/alerts/{aid}/approve", data={"csrf_token": csrf_token(c)},
                                     follow_redirects=True).get_data(as_text=True)
    assert words in no_english(html)
    assert "11:30" in html or "12:30" in html     # Europe/Brussels, not the UTC 10:30
    assert expired.hour == 10


@pytest.mark.parametrize("text", ["inbraak in {straat} rond {uur}", "inbraak in <straat>", "inbraak in {{ straat }}"])
@pytest.mark.parametrize("lang, words", [("nl", "[straat]"), ("fr", "[straat]")])
def test_a_template_placeholder_in_other_brackets_is_refused(admin, world, text, lang, words):
    """Review 17b: only [straat] is a placeholder the page makes a field of and the store refuses: a template
    saved with {straat} or <straat> sent those as typed. The template form now says to use square brackets."""
    tid = _template_id(admin)
    resp = in_language(admin, lang).post(f"/admin/templates/{tid}", data={
        "csrf_token": csrf_token(admin), "title": "Inbraak", "category": "urgent", "text_nl": text})
    html = no_english(resp.get_data(as_text=True))
    assert resp.status_code == 400 and 'id="error-text_nl"' in html and words in html
    assert {"nl": "straat", "fr": "rue"}[lang] in html or "straat" in html
