"""Template placeholders: the "[straat]" / "[rue]" slots a dispatcher must fill before an alert goes out.

A template holds the same slots in every language, in the same order ("inbraak in [straat]
rond [uur]" / "cambriolage à [rue] vers [heure]"). The page shows each slot once, named in
the dispatcher's language, and writes the value into every language's text; the store
refuses any text that still holds a slot, so a half-filled template never goes out.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# One bracketed word or phrase on one line ("[straat]", "[merk, kleur]", "[beschrijving van de verdachte:
# kleding, lengte, haar]"); not "[1]" or "[ ]". Up to 100 characters: a template's description of what to
# fill in can be long, and a slot the page makes no field for must be typed over by hand.
SLOT = re.compile(r"\[([^\[\]\d\s][^\[\]\n]{0,99})\]")
# What the store refuses: a slot however it was typed — spaces inside the brackets ("[ straat ]"),
# full-width or lenticular brackets from phone keyboards ("［rue］", "【rue】") — as page fields only
# come from SLOT, a loosely typed slot would otherwise get no field and go out unfilled — nor any length
# or line limit: a long slot, or one the template form's textarea wrapped over two lines, is a slot too.
_LEFTOVER = re.compile(r"[\[［【]\s*([^\[\]［］【】\d\s][^\[\]［］【】]*?)\s*[\]］】]")
# Slots whose value is a time of day get a time field (24 h, as typed by the dispatcher). A slot is
# of a kind when one of its words is in the list ("[heure approximative]", "[time of day]"); German
# and Dutch glue words together, so their usual compounds are listed whole (no suffix rule: "muur"
# and "vuur" end in "uur" and are no time).
_TIME_WORDS = {"uur", "tijd", "tijdstip", "heure", "horaire", "uhr", "zeit", "uhrzeit", "zeitpunkt", "tatzeit",
               "time", "hour"}
_NUMBER_WORDS = {"leeftijd", "âge", "age", "alter"}
_WORD = re.compile(r"[^\W\d_]+")


@dataclass(frozen=True)
class Field:
    """One slot of a template: its position, its name per language, the kind of input it wants."""

    index: int
    names: dict[str, str]          # language -> slot name as written in that language's text
    kind: str = "text"             # text | time | number

    def label(self, lang: str) -> str:
        """The slot's name in LANG (else in the first language that has it), as a form label."""
        name = self.names.get(lang) or next(iter(self.names.values()))
        return name[:1].upper() + name[1:]


def slots(text: str) -> list[str]:
    """The distinct slot names in TEXT, in order of first appearance."""
    seen: list[str] = []
    for name in SLOT.findall(text or ""):
        if name not in seen:
            seen.append(name)
    return seen


def leftover(text: str) -> str | None:
    """The first slot still in TEXT, however bracketed or spaced (None when there is none)."""
    m = _LEFTOVER.search(text or "")
    return m.group(1) if m else None


# A placeholder written with other brackets ("{straat}", "{{ straat }}", "<straat>"): the page makes no field of
# it and the store would not refuse it, so a template holding one is refused when it is saved.
_OTHER_BRACKETS = re.compile(r"(?:\{+|<)\s*([^\W\d_][^{}<>\n]{0,99}?)\s*(?:\}+|>)")


def other_brackets(text: str) -> str | None:
    """The name of the first placeholder in TEXT written with braces or angle brackets (None when none)."""
    for m in _OTHER_BRACKETS.finditer(text or ""):
        name, whole = m.group(1), m.group(0)
        if "@" in name or "://" in name or name.lower().startswith("www."):
            continue            # an e-mail address or a link written the usual way: <info@politie.be>
        if whole.startswith("<") and (whole[1].isspace() or whole[-2].isspace()):
            continue            # "temperatuur < nul en wind > 50": a comparison, not a placeholder
        return name
    return None


# A slot that joins two things ("[plaats en tijd]", "[lieu et heure]") asks for more than a time or a number:
# it is a text field, or the place could not be typed into a time input.
_JOINING_WORDS = {"en", "et", "und", "and", "ou", "oder", "or"}   # not "of": English "time of day"
_JOINING_MARKS = ("/", ",", "&", "+", " - ")     # "uur & plaats", "tijd - plaats": more than one thing asked


def _kind(name: str) -> str:
    words = set(_WORD.findall(name.lower()))
    if words & _JOINING_WORDS or any(mark in name for mark in _JOINING_MARKS):
        return "text"
    return "time" if words & _TIME_WORDS else "number" if words & _NUMBER_WORDS else "text"


def fields_of(texts: dict[str, str]) -> list[Field]:
    """The fields of a template with TEXTS (language -> text): the i-th slot of a kind in each language is one field.

    Pairing by kind, not by bare position, because word order differs between languages: "inbraak in
    [straat] rond [uur]" is "Um [Uhr] Einbruch in [Straße]" in German, and the street must not land
    in the time slot (nor the street field become a time input).
    """
    fields: dict[tuple[str, int], dict[str, str]] = {}      # (kind, n-th of that kind) -> names
    for lang, text in texts.items():
        seen: dict[str, int] = {}
        for name in slots(text):
            kind = _kind(name)
            fields.setdefault((kind, seen.get(kind, 0)), {})[lang] = name
            seen[kind] = seen.get(kind, 0) + 1
    return [Field(i, names, kind) for i, ((kind, _n), names) in enumerate(fields.items())]


def fill(texts: dict[str, str], template: dict[str, str], values: dict[int, str]) -> dict[str, str]:
    """TEXTS with each slot of TEMPLATE replaced by VALUES[field index], where a value was given.

    Slots are found by their name in the template's text of the same language, so filling twice
    (the browser already did, then the server) changes nothing the second time.
    """
    fields = fields_of(template)
    out = {}
    for lang, text in texts.items():
        for f in fields:
            value = (values.get(f.index) or "").strip()
            name = f.names.get(lang)
            if value and name:
                text = text.replace(f"[{name}]", value)
        out[lang] = text
    return out
