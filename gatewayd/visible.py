"""Does a text show anything? Zero-width spaces, joiners, bidi marks and other format
characters print nothing: an alert made only of them reaches people as an empty SMS."""
from __future__ import annotations

import unicodedata

# Letters, numbers, punctuation and symbols are seen. Separators (Z*), control, format,
# private-use and unassigned characters (C*) are not, nor combining marks (M*) on their own.
_VISIBLE_CATEGORIES = frozenset("LNPS")
# Letters and symbols by category that draw nothing: the Hangul fillers (choseong, jungseong,
# compatibility, halfwidth) and the Braille blank, the usual way past "is it empty?" checks.
_BLANK = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def has_visible(text: str) -> bool:
    """True when TEXT contains at least one character a reader would see."""
    return any(unicodedata.category(ch)[0] in _VISIBLE_CATEGORIES and ch not in _BLANK for ch in text)
