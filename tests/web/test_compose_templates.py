"""Templates with fields: filled once for every language; a text still holding a slot is refused (page and API)."""
from __future__ import annotations

import re

from gatewayd.model import Alert

from .conftest import csrf_token, network_id
from .test_alerts import alert_count, confirm_token

TPL = {"nl": "BIN-alarm: inbraak in [straat] rond [uur]. Daders mogelijk nog in de buurt. Niet zelf "
             "tussenkomen; bel 101 met signalement of nummerplaat.",
       "fr": "Alerte PLP : cambriolage à [rue] vers [heure]. Auteurs peut-être encore dans le quartier. "
             "N'intervenez pas ; appelez le 101 avec signalement ou plaque."}


def burglary_form(client, world, **fields):
    form = {"csrf_token": csrf_token(client), "networks": [str(network_id(world, "Lindeknoppen"))],
            "category": "urgent", "channel": "member", "template": "burglary",
            "text_nl": TPL["nl"], "text_fr": TPL["fr"]}
    form.update(fields)
    return form


def test_compose_shows_the_templates_fields_named_in_the_page_language(police):
    html = police.get("/alerts/new?category=urgent&template=burglary").get_data(as_text=True)
    assert re.search(r'<label for="field_burglary_0">Street</label>', html)
    assert re.search(r'<input id="field_burglary_1" name="field_1"[^>]*type="time"', html)


def test_unfilled_template_cannot_be_confirmed_and_the_error_names_the_field(police, world):
    resp = police.post("/alerts/confirm", data=burglary_form(police, world, field_0="Lindestraat"))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert 'id="error-field_1"' in html and "Fill in “Time”" in html
    assert 'href="#field_burglary_1"' in html          # the error summary links to the field
    assert re.search(r'id="field_burglary_1"[^>]*aria-invalid="true" aria-describedby="error-field_1"', html)


def test_fields_are_filled_into_every_language_once(police, world):
    form = burglary_form(police, world, field_0="Lindestraat", field_1="14:00")
    html = police.post("/alerts/confirm", data=form).get_data(as_text=True)
    assert "inbraak in Lindestraat rond 14:00" in html
    assert "cambriolage à Lindestraat vers 14:00" in html
    police.post("/alerts/send", data={**form, "confirm_token": confirm_token(html)})
    with world.session() as s:
        alert = s.query(Alert).one()
    assert "[" not in alert.texts["nl"] + alert.texts["fr"]


def test_a_slot_left_in_free_text_is_refused_naming_the_text(police, world):
    form = burglary_form(police, world, template="", text_fr="")
    resp = police.post("/alerts/confirm", data=form)
    assert resp.status_code == 400 and 'id="error-text_nl"' in resp.get_data(as_text=True)
    assert "[straat]" in resp.get_data(as_text=True)
    assert alert_count(world) == 0


def test_a_language_not_ticked_is_not_sent(police, world):
    form = burglary_form(police, world, field_0="Lindestraat", field_1="14:00", langs_chosen="1", langs=["nl"])
    html = police.post("/alerts/confirm", data=form).get_data(as_text=True)
    police.post("/alerts/send", data={**form, "confirm_token": confirm_token(html)})
    with world.session() as s:
        alert = s.query(Alert).one()
    assert set(alert.texts) == {"nl"}


def test_api_refuses_a_text_holding_a_placeholder(client, world):
    secret = world.create_token("cad", "", "admin")[1]
    resp = client.post("/api/v1/alerts", headers={"Authorization": f"Bearer {secret}"},
                       json={"networks": ["Lindeknoppen"], "category": "urgent", "text": "Inbraak in de Kerkstraat",
                             "texts": {"fr": TPL["fr"]}})
    body = resp.get_json()
    assert resp.status_code == 400 and body["field"] == "text[fr]" and "[rue]" in body["error"]
    assert alert_count(world) == 0


def test_api_refuses_a_long_placeholder(client, world):
    """A slot of more than 40 characters went out as it was (review 17b)."""
    secret = world.create_token("cad", "", "admin")[1]
    resp = client.post("/api/v1/alerts", headers={"Authorization": f"Bearer {secret}"},
                       json={"networks": ["Lindeknoppen"], "category": "urgent",
                             "text": "Verdachte: [beschrijving van de verdachte: kleding, lengte, haar]. Bel 101."})
    assert resp.status_code == 400 and resp.get_json()["field"] == "text"
    assert alert_count(world) == 0


def _compose_form_values(html: str) -> dict[str, list[str]]:
    """What a browser would submit from the compose form of HTML (enabled inputs, ticked boxes, textareas)."""
    from html.parser import HTMLParser

    class Form(HTMLParser):
        def __init__(self):
            super().__init__(convert_charrefs=True)
            self.values: dict[str, list[str]] = {}
            self.inside = self.disabled = False
            self.textarea = self.select = None

        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if tag == "form" and a.get("id") == "compose":
                self.inside = True
            if not self.inside:
                return
            if tag == "fieldset":
                self.disabled = "disabled" in a
            elif tag == "input" and not self.disabled and a.get("name"):
                if a.get("type") in ("checkbox", "radio") and "checked" not in a:
                    return
                self.values.setdefault(a["name"], []).append(a.get("value") or "")
            elif tag == "select":
                self.select = a.get("name")
            elif tag == "option" and "selected" in a and self.select:
                self.values.setdefault(self.select, []).append(a.get("value") or "")
            elif tag == "textarea":
                self.textarea = a["name"]
                self.values[self.textarea] = [""]

        def handle_endtag(self, tag):
            if tag == "form":
                self.inside = False
            elif tag == "fieldset":
                self.disabled = False
            elif tag == "textarea":
                self.textarea = None

        def handle_data(self, data):
            if self.textarea:
                self.values[self.textarea][0] += data

    p = Form()
    p.feed(html)
    return p.values


def test_a_field_changed_after_an_error_changes_the_text_that_goes_out(police, world):
    """Review 17: the dispatcher fills the street, forgets the network, gets the form back (texts now
    filled), corrects the street: the corrected street must be what is confirmed, not the first one."""
    form = burglary_form(police, world, field_0="Lindestraat", field_1="14:00", networks=[])
    back = police.post("/alerts/confirm", data=form)
    assert back.status_code == 400
    again = _compose_form_values(back.get_data(as_text=True))
    again.update(field_0=["Kerkstraat"], networks=[str(network_id(world, "Lindeknoppen"))])
    html = police.post("/alerts/confirm", data=again).get_data(as_text=True)
    assert "inbraak in Kerkstraat rond 14:00" in html and "Lindestraat" not in html


def test_confirm_warns_when_one_language_was_edited_and_another_is_the_template_as_it_was(police, world):
    """Review 17b: the dispatcher adds "two men in black jackets" to the Dutch text; the French text is the
    template's, fields filled, without it, and went to the French-speaking members with nothing said."""
    nl = TPL["nl"].replace("[straat]", "Lindestraat").replace("[uur]", "14:00") + " Twee mannen in zwarte jas."
    form = burglary_form(police, world, field_0="Lindestraat", field_1="14:00", text_nl=nl)
    html = police.post("/alerts/confirm", data=form).get_data(as_text=True)
    warning = html.split('id="untouched-languages"')[1].split("</p>")[0]
    assert "French" in warning and "Dutch" in warning
    plain = police.post("/alerts/confirm", data=burglary_form(police, world, field_0="Lindestraat",
                                                             field_1="14:00")).get_data(as_text=True)
    assert 'id="untouched-languages"' not in plain      # only the fields filled: every language says the same


def test_a_line_break_sent_as_cr_lf_is_not_an_edit(police, world):
    """A textarea sends CR LF: the French text with its line break so sent is still the template's."""
    nl = TPL["nl"].replace("[straat]", "Lindestraat").replace("[uur]", "14:00") + " Twee mannen."
    fr = TPL["fr"].replace(". Auteurs", ".\r\nAuteurs")
    html = police.post("/alerts/confirm", data=burglary_form(police, world, field_0="Lindestraat", field_1="14:00",
                                                            text_nl=nl, text_fr=fr)).get_data(as_text=True)
    assert "French" in html.split('id="untouched-languages"')[1].split("</p>")[0]
