"""Who and when first: "Politie zone Noord, 14 uur 5" before the message.

A listener (or reader) who knows at once who sends and when can judge the
rest. The sender is the network's police zone (or, without one, the network's
name); the time is when the alert was written, in the box's time zone, read
the way each language says a time. On with `[dispatch] sender_first = true`.
"""
from __future__ import annotations

import zoneinfo
from datetime import datetime

# A clock time as a phone voice should say it: "14 uur 5", "14 heures 5" ...
_SPOKEN = {"nl": ("{h} uur {m}", "{h} uur"), "fr": ("{h} heures {m}", "{h} heures"),
           "de": ("{h} Uhr {m}", "{h} Uhr"), "en": ("{h} {m:02d}", "{h} hundred")}
# ... and as it is written in an SMS.
_WRITTEN = {"nl": "{h}:{m:02d}", "fr": "{h}h{m:02d}", "de": "{h}:{m:02d}", "en": "{h}:{m:02d}"}


def _local(at: datetime, tz: str) -> datetime:
    return at.astimezone(zoneinfo.ZoneInfo(tz))


def spoken_time(at: datetime, language: str, tz: str) -> str:
    t = _local(at, tz)
    with_minutes, on_the_hour = _SPOKEN.get(language, _SPOKEN["en"])
    return (with_minutes if t.minute else on_the_hour).format(h=t.hour, m=t.minute)


def written_time(at: datetime, language: str, tz: str) -> str:
    t = _local(at, tz)
    return _WRITTEN.get(language, _WRITTEN["en"]).format(h=t.hour, m=t.minute)


def with_heading(text: str, sender: str, at: datetime, language: str, tz: str, spoken: bool) -> str:
    """TEXT with the sender and the time in front: spoken form for a call, written form for an SMS."""
    sender = " ".join(sender.split())
    if spoken:
        head = f"{sender}, {spoken_time(at, language, tz)}." if sender else f"{spoken_time(at, language, tz)}."
        return f"{head} {text}"
    head = f"{sender} {written_time(at, language, tz)}" if sender else written_time(at, language, tz)
    return f"{head}: {text}"
