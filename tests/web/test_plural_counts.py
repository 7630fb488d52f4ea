"""Counts the page words with a number are plural-aware in nl, fr and en (review 17b): "1 berichten …
geannuleerd", "1 members imported", "1 recipients … are not listed", "to 1 members of", "1 characters",
"queued: 1 messages", "and 1 networks outside yours" were worded as plurals."""
from __future__ import annotations

import pytest

from .conftest import csrf_token
from .test_alerts import compose_form
from .test_followup_scope import shared_alert  # noqa: F401  (fixture)
from .test_import_words import import_form, in_language


@pytest.mark.parametrize("lang, words", [("en", "1 message that had not gone yet was cancelled."),
                                         ("nl", "1 bericht dat nog niet vertrokken was, is geannuleerd."),
                                         ("fr", "1 message qui n’était pas encore parti a été annulé.")])
def test_cancelling_one_message_says_one_message(half_sent, lang, words):
    c, store, aid, _numbers = half_sent          # one sent, one in flight, one queued: one stops
    html = in_language(c, lang).post(f"/alerts/{aid}/cancel", follow_redirects=True,
                                     data={"csrf_token": csrf_token(c), "confirmed": "1"}).get_data(as_text=True)
    assert words in html


@pytest.mark.parametrize("lang, words", [("en", "1 member imported into Kerkwijk."),
                                         ("nl", "1 lid geïmporteerd in Kerkwijk."),
                                         ("fr", "1 membre importé dans Kerkwijk.")])
def test_importing_one_member_says_one_member(coordinator, world, lang, words):
    csv = "name,phone,channel,lang\nEen,0476 10 10 10,sms,nl\n"
    html = in_language(coordinator, lang).post("/members/import", follow_redirects=True,
                                               data=import_form(coordinator, world, csv, step="import"))
    assert words in html.get_data(as_text=True)


@pytest.mark.parametrize("lang, words", [("en", "1 recipient outside your networks is not listed."),
                                         ("nl", "1 ontvanger buiten uw netwerken wordt niet getoond."),
                                         ("fr", "1 destinataire hors de vos réseaux n’est pas affiché.")])
def test_one_hidden_recipient_is_one_recipient(police, world, shared_alert, lang, words):  # noqa: F811
    assert words in in_language(police, lang).get(f"/alerts/{shared_alert}").get_data(as_text=True)


@pytest.mark.parametrize("lang, words", [("en", "to 1 member of Kerkwijk"), ("nl", "naar 1 lid van Kerkwijk"),
                                         ("fr", "à 1 membre de Kerkwijk")])
def test_confirming_to_one_member_says_one_member(police, world, lang, words):
    html = in_language(police, lang).post("/alerts/confirm", data=compose_form(
        police, world, network="Kerkwijk")).get_data(as_text=True)
    assert words in html


@pytest.mark.parametrize("lang, words", [("en", "1 character"), ("nl", "1 teken"), ("fr", "1 caractère")])
def test_one_typed_character_is_one_character(police, world, lang, words):
    html = in_language(police, lang).post("/alerts/preview", data=compose_form(
        police, world, text="x")).get_data(as_text=True)
    import re
    assert re.search(r"(?<!\d)" + re.escape(words) + r"(?!s)", html), words


@pytest.mark.parametrize("lang, words", [("en", "queued: 1 message."), ("nl", "in de wachtrij: 1 bericht."),
                                         ("fr", "en file d’attente : 1 message.")])
def test_sending_to_one_member_says_one_message(police, world, lang, words):
    form = compose_form(police, world, network="Kerkwijk")
    in_language(police, lang)
    import re
    token = re.search(r'name="confirm_token" value="([^"]+)"',
                      police.post("/alerts/confirm", data=form).get_data(as_text=True)).group(1)
    html = police.post("/alerts/send", data={**form, "confirm_token": token}, follow_redirects=True).get_data(
        as_text=True)
    assert words in html


@pytest.mark.parametrize("lang, words", [("en", "and 1 network outside yours"), ("nl", "en 1 netwerk buiten"),
                                         ("fr", "et 1 réseau hors")])
def test_one_network_outside_ones_own_is_one_network(police, world, shared_alert, lang, words):  # noqa: F811
    assert words in in_language(police, lang).get(f"/alerts/{shared_alert}").get_data(as_text=True)


@pytest.mark.parametrize("lang, words", [("en", "Up to 1 call if"), ("nl", "Tot 1 oproep als"),
                                         ("fr", "Jusqu’à 1 appel si")])
def test_escalation_of_one_member_is_one_call(tmp_path, template_db, lang, words):
    from .test_alerts import _client_with
    client, store = _client_with(tmp_path, template_db, escalate_after_minutes_urgent=5.0)
    html = in_language(client, lang).post("/alerts/preview", data=compose_form(
        client, store, network="Kerkwijk")).get_data(as_text=True)
    store.engine.dispose()
    assert words in html


@pytest.mark.parametrize("lang, words", [("en", "allow 1 more SMS segment today"),
                                         ("nl", "nog 1 sms-segment toe"), ("fr", "encore 1 segment SMS")])
def test_a_quota_with_one_segment_left_says_one_segment(make, lang, words):
    from .conftest import login_as
    from .scenarios import TIGHT_SIM
    c, store = make(modems=TIGHT_SIM, emulated=[])
    login_as(c, store, "agent")
    html = in_language(c, lang).post("/alerts/preview", data=compose_form(c, store)).get_data(as_text=True)
    assert words in html


@pytest.mark.parametrize("lang, words", [("en", "about 1 minute"), ("nl", "ongeveer 1 minuut"),
                                         ("fr", "environ 1 minute")])
def test_an_estimate_of_one_minute_says_one_minute(app, lang, words):
    from flask import session
    with app.test_request_context("/"):
        session["lang"] = lang
        out = app.jinja_env.from_string('{% from "_macros.html" import duration %}{{ duration(60) }}').render()
    assert out == words
