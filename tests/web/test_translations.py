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
