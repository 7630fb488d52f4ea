"""Review of issue 17: no spelling of a template slot gets past the store, whichever path sends."""
from __future__ import annotations

from dataclasses import replace as dc_replace

import pytest

from gatewayd.errors import InputError
from gatewayd.model import Alert
from gatewayd.store import AlertRequest
from tests.conftest import add_members


@pytest.fixture
def net(store):
    store.add_network("N", zone="Leuven")
    return "N"


@pytest.mark.parametrize("text", [
    "inbraak in [ straat ] rond 14:00",      # an admin typed spaces inside the brackets
    "cambriolage à ［rue］ vers 14:00",        # full-width brackets (phone keyboards, copy-paste)
    "Einbruch in [\u00a0Straße] um 14:00",    # no-break space after the bracket
])
def test_a_slot_spelt_with_spaces_or_full_width_brackets_is_refused(store, net, text):
    with pytest.raises(InputError, match="placeholder"):
        store.validate_alert(AlertRequest(networks=(net,), category="urgent", text=text))


def test_approval_refuses_an_alert_that_still_holds_a_placeholder(store, net):
    """An alert written before the refusal existed (or by any path that skipped it) waits for
    approval with "[straat]" in it: the second person must not release it to members."""
    store.policy = dc_replace(store.policy, approval_categories=("urgent",))
    add_members(store, net, 1)
    r = store.enqueue_alert(AlertRequest(networks=(net,), category="urgent", text="inbraak in Lindestraat",
                                         author="ann"))
    with store.session.begin() as s:      # the row as an older version stored it
        s.get(Alert, r.alert_id).texts = {"fr": "cambriolage à [rue]"}
    with pytest.raises(InputError, match=r"placeholder \[rue\]"):
        store.approve_alert(r.alert_id, "bob")
    assert store.alert_status(r.alert_id)["state"] == "pending_approval"


def test_slots_in_another_word_order_get_the_right_value():
    """German puts the time first: the street must not be written into "[Uhr]"."""
    from gatewayd.placeholders import fields_of, fill
    tpl = {"nl": "inbraak in [straat] rond [uur]", "de": "Um [Uhr] Einbruch in [Straße]"}
    assert [f.kind for f in fields_of(tpl)] == ["text", "time"]
    assert fill(tpl, tpl, {0: "Lindestraat", 1: "14:00"}) == {
        "nl": "inbraak in Lindestraat rond 14:00", "de": "Um 14:00 Einbruch in Lindestraat"}
