"""The live preview does not shout (review 17b): an empty compose form put "Write the text in at least one
language." into the preview as role=alert the moment the page opened, and every refresh (each tick, each
key) put a new role=alert node there, so a screen reader interrupted the dispatcher again and again. An
empty text is no error in the preview; a real text problem is a figure the announcer speaks once, when it
changes (compose.js), not an alert."""
from __future__ import annotations

from .test_alerts import compose_form


def test_an_empty_form_shows_no_text_error_in_the_preview(police, world):
    html = police.post("/alerts/preview", data=compose_form(police, world, text="")).get_data(as_text=True)
    assert 'id="pv-text-error"' not in html and 'role="alert"' not in html


def test_a_text_problem_in_the_preview_is_a_figure_not_an_alert(police, world):
    html = police.post("/alerts/preview", data=compose_form(police, world, text="inbraak in ［straat］")).get_data(
        as_text=True)
    tag = html.split('id="pv-text-error"')[0].rsplit("<", 1)[1] + html.split('id="pv-text-error"')[1].split(">")[0]
    assert 'role="alert"' not in tag and "data-figure=" in tag
