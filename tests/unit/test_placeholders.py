"""Template slots: found per language, paired by position, filled once into every text."""
from __future__ import annotations

from gatewayd.placeholders import fields_of, fill, leftover, slots

BURGLARY = {"nl": "inbraak in [straat] rond [uur]. Bel 101.",
            "fr": "cambriolage à [rue] vers [heure]. Appelez le 101.",
            "en": "burglary in [street] around [time]."}


def test_slots_are_the_bracketed_words_in_order_once_each():
    assert slots("in [straat] bij [straat] rond [uur]") == ["straat", "uur"]


def test_numbers_and_empty_brackets_are_not_slots():
    assert slots("zie [1] en [ ] en []") == []


def test_fields_pair_the_slots_of_each_language_by_position():
    fields = fields_of(BURGLARY)
    assert [f.names for f in fields] == [{"nl": "straat", "fr": "rue", "en": "street"},
                                         {"nl": "uur", "fr": "heure", "en": "time"}]
    assert [f.label("fr") for f in fields] == ["Rue", "Heure"]


def test_a_time_slot_is_a_time_field():
    assert [f.kind for f in fields_of(BURGLARY)] == ["text", "time"]


def test_fill_writes_each_value_into_every_language():
    out = fill(BURGLARY, BURGLARY, {0: "Lindestraat", 1: "14:00"})
    assert out == {"nl": "inbraak in Lindestraat rond 14:00. Bel 101.",
                   "fr": "cambriolage à Lindestraat vers 14:00. Appelez le 101.",
                   "en": "burglary in Lindestraat around 14:00."}


def test_fill_twice_changes_nothing_the_second_time():
    once = fill(BURGLARY, BURGLARY, {0: "Kerkstraat", 1: "9:30"})
    assert fill(once, BURGLARY, {0: "Kerkstraat", 1: "9:30"}) == once


def test_an_empty_value_leaves_its_slot():
    out = fill(BURGLARY, BURGLARY, {0: "Kerkstraat", 1: "  "})
    assert slots(out["nl"]) == ["uur"]


# A time slot named otherwise than the short words ("[Uhrzeit]", "[tijdstip]", "[heure approximative]")
# was a text field of its own: the dispatcher typed the time twice, once without a time input (session 3).
OTHER_NAMES = {"nl": "inbraak in [straat] rond [tijdstip]",
               "fr": "cambriolage à [rue] vers [heure approximative]",
               "de": "Einbruch in [Straße] um [Uhrzeit]",
               "en": "burglary in [street] around [time of day]"}


def test_a_time_slot_named_otherwise_is_still_one_time_field():
    fields = fields_of(OTHER_NAMES)
    assert [(f.kind, f.names) for f in fields] == [
        ("text", {"nl": "straat", "fr": "rue", "de": "Straße", "en": "street"}),
        ("time", {"nl": "tijdstip", "fr": "heure approximative", "de": "Uhrzeit", "en": "time of day"})]
    assert fill(OTHER_NAMES, OTHER_NAMES, {0: "Kerkstraat", 1: "14:00"})["de"] == "Einbruch in Kerkstraat um 14:00"


def test_an_age_slot_named_in_words_is_a_number_field():
    assert [f.kind for f in fields_of({"nl": "verdachte van [leeftijd verdachte] jaar", "de": "[Alter] Jahre"})] \
        == ["number"]


def test_slots_in_another_word_order_get_the_right_value():
    """German puts the time first: the street must not be written into "[Uhr]"."""
    tpl = {"nl": "inbraak in [straat] rond [uur]", "de": "Um [Uhr] Einbruch in [Straße]"}
    assert [f.kind for f in fields_of(tpl)] == ["text", "time"]
    assert fill(tpl, tpl, {0: "Lindestraat", 1: "14:00"}) == {
        "nl": "inbraak in Lindestraat rond 14:00", "de": "Um 14:00 Einbruch in Lindestraat"}


# A slot longer than 40 characters, or wrapped over two lines in the template form's textarea, was neither
# a field nor refused: "[beschrijving van de verdachte: kleding, lengte, haar]" went out to members (review 17b).
LONG = "beschrijving van de verdachte: kleding, lengte, haar"


def test_a_long_slot_is_a_field():
    tpl = {"nl": f"Verdachte gezien in [straat]: [{LONG}]. Bel 101."}
    assert [f.names["nl"] for f in fields_of(tpl)] == ["straat", LONG]
    assert fill(tpl, tpl, {0: "Kerkstraat", 1: "man, blauwe jas"})["nl"] == \
        "Verdachte gezien in Kerkstraat: man, blauwe jas. Bel 101."


def test_a_long_or_wrapped_slot_left_in_a_text_is_found():
    assert leftover(f"Verdachte: [{LONG}]. Bel 101.") == LONG
    assert leftover("Voertuig: [merk, kleur en\nnummerplaat]. Bel 101.") == "merk, kleur en\nnummerplaat"


def test_a_slot_asking_for_a_time_and_more_is_a_text_field():
    """Review 17b: "[plaats en tijd]" held the word "tijd" and became a time input: the place could not be typed."""
    fields = fields_of({"nl": "gezien: [plaats en tijd]", "fr": "vu : [lieu et heure]", "de": "[Ort und Zeit]",
                        "en": "seen: [place and time]"})
    assert [(f.kind, f.names["nl"]) for f in fields] == [("text", "plaats en tijd")]
    assert [f.kind for f in fields_of({"en": "[time of day]", "fr": "[heure approximative]"})] == ["time"]


def test_a_slot_joining_two_things_with_a_mark_is_a_text_field():
    """Review of review 17b: "[uur & plaats]", "[tijd - plaats]", "[uur + plaats]" stayed time inputs."""
    for slot in ("uur & plaats", "tijd - plaats", "uur + plaats"):
        assert [f.kind for f in fields_of({"nl": f"gezien: [{slot}]"})] == ["text"], slot


def test_an_address_a_link_or_a_comparison_in_angle_brackets_is_no_placeholder():
    """Review of review 17b: a template holding <info@politie.be>, <https://politie.be> or "< 0 ... > 50"
    could not be saved ("write the placeholder as [info@politie.be]")."""
    from gatewayd.placeholders import other_brackets
    for text in ("Info: <info@politie.be>", "Zie <https://politie.be>", "Zie <www.politie.be>",
                 "temperatuur < nul en wind > 50 km/u"):
        assert other_brackets(text) is None, text
    assert other_brackets("inbraak in <straat>") == "straat" and other_brackets("in {{ straat }}") == "straat"
