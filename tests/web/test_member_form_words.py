"""The member form's refusals in the page language (issue 17, session 3): the store names the problem
(model.RowProblem) and its values, web/import_words.py words it; the CLI keeps the store's English."""
from __future__ import annotations

import pytest

from gatewayd.errors import InputError
from web import import_words

from .conftest import csrf_token, network_id
from .test_import_words import in_language
from .test_members import add_form

ZOE = "0473 99 88 77"          # Zoë Zuid, in Zuidrand only: not the coordinator's
KIM = "+32472111111"           # Kim Janssens, in Kerkwijk: the coordinator's

# What the store said in English before: none of it may reach an nl or fr page.
ENGLISH = ["belongs to another network", "already a member", "only an admin", "choose at least one network",
           "replied STOP"]


def refused(client, world, lang, url="/members/new", **form):
    resp = in_language(client, lang).post(url, data=add_form(client, world, **form))
    assert resp.status_code == 400
    html = resp.get_data(as_text=True)
    for english in ENGLISH:
        assert english not in html, english
    return html


@pytest.mark.parametrize("lang, words", [("nl", "hoort bij een lid van een ander netwerk"),
                                         ("fr", "appartient à un membre d’un autre réseau")])
def test_another_networks_number(coordinator, world, lang, words):
    html = refused(coordinator, world, lang, phone=ZOE)
    assert words in html and "Zoë" not in html


@pytest.mark.parametrize("lang, words", [("nl", "is al lid van uw netwerken"), ("fr", "est déjà membre de vos réseaux")])
def test_a_number_already_in_ones_networks(coordinator, world, lang, words):
    assert words in refused(coordinator, world, lang, phone=KIM)


@pytest.mark.parametrize("lang, words", [("nl", "is al lid (#"), ("fr", "est déjà membre (n° ")])
def test_admin_learns_which_member_has_the_number(admin, world, lang, words):
    html = refused(admin, world, lang, phone=ZOE)
    assert words in html and str(world.member_by_number("+32473998877").id) in html


@pytest.mark.parametrize("lang, words", [("nl", "Kies minstens één netwerk"), ("fr", "Choisissez au moins un réseau")])
def test_no_network_chosen(coordinator, world, lang, words):
    assert words in refused(coordinator, world, lang, networks=[])


@pytest.fixture
def shared(world):
    """Kim is in Kerkwijk (the coordinator's) and in Zuidrand (not theirs)."""
    world.add_member("Zuidrand", "0472 11 11 11")
    return world.member_by_number(KIM).id


@pytest.mark.parametrize("lang, words", [("nl", "alleen een beheerder"), ("fr", "seul un administrateur")])
def test_renumbering_a_shared_member(coordinator, world, shared, lang, words):
    assert words in refused(coordinator, world, lang, url=f"/members/{shared}", phone="0476 12 12 12")


@pytest.mark.parametrize("lang, words", [("nl", "alleen een beheerder"), ("fr", "seul un administrateur")])
def test_deactivating_a_shared_member_flashes_in_the_page_language(coordinator, world, shared, lang, words):
    resp = in_language(coordinator, lang).post(f"/members/{shared}/active", follow_redirects=True,
                                               data={"csrf_token": csrf_token(coordinator), "active": "0"})
    html = resp.get_data(as_text=True)
    assert words in html and "only an admin" not in html and world.member_by_number(KIM).active is True


@pytest.mark.parametrize("lang, words", [("nl", "alleen zij kunnen"), ("fr", "seul ce membre peut")])
def test_stop_is_final_in_the_page_language(app, world, lang, words):
    # No page offers to undo a STOP (the box is disabled), so the store's refusal is worded directly.
    world.set_opt_out(KIM, True)
    kim = world.member_by_number(KIM)
    with pytest.raises(InputError) as caught:
        world.save_member(kim.id, KIM, "Kim", "", "nl", [network_id(world, "Kerkwijk")], None, opted_out=False)
    with app.test_request_context():
        from flask import session
        session["lang"] = lang
        worded = import_words.input_reason(caught.value)
    assert words in worded and "replied STOP" not in worded
    assert "replied STOP" in caught.value.reason          # the CLI's English stays


def test_the_cli_keeps_the_stores_english(world):
    with pytest.raises(InputError, match="already a member of 'Kerkwijk'"):
        world.add_member("Kerkwijk", KIM)
