"""Every string on the page has a Dutch and a French translation in the committed catalogs."""
from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.mofile import read_mo

WEB = Path(__file__).resolve().parents[2] / "web"


def source_messages() -> set:
    keywords = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None}
    found = set()
    for _file, _line, msg, _comments, _ctx in extract_from_dir(
            str(WEB), method_map=[("**.py", "python"), ("templates/**.html", "jinja2")], keywords=keywords):
        found.add(msg if isinstance(msg, str) else msg[0])
    return found


@pytest.mark.parametrize("lang", ["nl", "fr"])
def test_compiled_catalog_translates_every_source_string(lang):
    with open(WEB / "translations" / lang / "LC_MESSAGES" / "messages.mo", "rb") as f:
        catalog = read_mo(f)
    translated = {m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id and m.string}
    missing = sorted(source_messages() - translated)
    assert missing == [], f"untranslated in {lang}: {missing[:10]}"


def _catalog(lang: str):
    from babel.messages.pofile import read_po
    with open(WEB / "translations" / lang / "LC_MESSAGES" / "messages.po", "rb") as f:
        return read_po(f)


@pytest.mark.parametrize("lang", ["nl", "fr", "en"])
def test_no_empty_fuzzy_or_short_plural_translation(lang):
    """An empty msgstr or plural form shows English (French "201 members"); a fuzzy one is not compiled."""
    catalog = _catalog(lang)
    bad = []
    for m in catalog:
        if not m.id:
            continue
        forms = m.string if isinstance(m.id, (tuple, list)) else (m.string,)
        expected = catalog.num_plurals if isinstance(m.id, (tuple, list)) else 1
        if m.fuzzy or len(forms) != expected or not all(forms):
            bad.append(m.id)
        elif lang == "en" and tuple(forms) != ((m.id[0], m.id[1]) if expected == 2 and len(m.id) == 2 and
                                               isinstance(m.id, tuple) else (m.id,)):
            bad.append(m.id)       # English is the source text: another string here came from fuzzy matching
    assert bad == [], f"{lang}: {len(bad)} incomplete, e.g. {bad[:5]}"


def test_french_plural_of_many_members_is_french():
    from babel.support import Translations
    with open(WEB / "translations" / "fr" / "LC_MESSAGES" / "messages.mo", "rb") as f:
        t = Translations(f)
    assert t.ngettext("%(num)s member", "%(num)s members", 201) % {"num": 201} == "201 membres"


def test_counts_are_plural_aware_in_dutch():
    """"1 spraakoproepen" / "1 regels klaar": a number next to a noun goes through ngettext."""
    source = "\n".join(p.read_text(encoding="utf-8") for p in (WEB / "templates").glob("*.html"))
    for singular_noun in ("%(n)s rows ready", "%(n)s rows with errors", "%(n)s entries"):
        assert f'_("{singular_noun}"' not in source, singular_noun



def test_device_state_is_translated_on_the_start_page(client, world):
    from gatewayd.channels.base import DeviceHealth, DeviceState

    from .conftest import csrf_token, login_as
    world.record_device("sim1", "sms", "test", DeviceHealth(state=DeviceState.UP))
    login_as(client, world, "agent")
    client.post("/language", data={"lang": "fr", "csrf_token": csrf_token(client)})
    html = client.get("/").get_data(as_text=True)
    assert "sim1: up<" not in html and "sim1: en service" in html
