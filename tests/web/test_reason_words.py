"""The status page's Reason column in the page language (review 17b): the store writes fixed reasons
("cancelled by agent", "superseded by a correction before it was sent", …) that reached nl/fr pages in
English; a device's own error text stays as the device said it."""
from __future__ import annotations

import pytest

from .conftest import csrf_token
from .scenarios import correct
from .test_import_words import in_language


def reasons(html: str) -> list[str]:
    import re
    return re.findall(r'data-label="[^"]*">([^<]*)</td></tr>', html)


@pytest.mark.parametrize("lang, words", [("nl", "geannuleerd door agent"), ("fr", "annulé par agent"),
                                         ("en", "cancelled by agent")])
def test_a_cancelled_message_says_who_cancelled_it_in_the_page_language(half_sent, lang, words):
    c, store, aid, _numbers = half_sent
    c.post(f"/alerts/{aid}/cancel", data={"csrf_token": csrf_token(c), "confirmed": "1"})
    html = in_language(c, lang).get(f"/alerts/{aid}").get_data(as_text=True)
    assert words in reasons(html)


@pytest.mark.parametrize("lang, words", [("nl", "vervangen door een correctie voor het vertrok"),
                                         ("fr", "remplacé par une correction avant son départ")])
def test_a_superseded_message_says_so_in_the_page_language(half_sent, lang, words):
    c, store, aid, _numbers = half_sent
    correct(c, aid)
    html = in_language(c, lang).get(f"/alerts/{aid}").get_data(as_text=True)
    assert words in reasons(html)
    assert "superseded by a correction" not in html
