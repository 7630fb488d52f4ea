"""When things may happen: quiet hours, expiry, retries and their backoff.

Pure functions of the dispatch policy and a time: the dispatcher, the store, the
keeper and the page all ask here, so none of them imports another for a rule.
"""
from __future__ import annotations

import zoneinfo
from datetime import datetime, timedelta

from .config import DispatchConfig, quiet_window
from .model import Category


def in_quiet_hours(now: datetime, spec: str, tz: str) -> bool:
    """True when NOW (aware) falls inside the daily window SPEC ('22:00-07:00') in zone TZ."""
    window = quiet_window(spec)
    if window is None:
        return False
    start, end = window
    local = now.astimezone(zoneinfo.ZoneInfo(tz))
    minute = local.hour * 60 + local.minute
    if start == end:
        return False
    return start <= minute < end if start < end else (minute >= start or minute < end)


def expiry_for(policy: DispatchConfig, category: Category) -> timedelta:
    """How long an alert of CATEGORY may wait before what is still queued expires (never goes late)."""
    minutes = {Category.URGENT: policy.expiry_urgent_minutes, Category.FEEDBACK: policy.expiry_feedback_minutes,
               Category.PREVENTION: policy.expiry_prevention_minutes}[Category(category)]
    return timedelta(minutes=minutes)


def system_expiry(policy: DispatchConfig) -> timedelta:
    """How long a message of no alert (a STOP confirmation, a keeper text) may wait before it expires."""
    return timedelta(minutes=policy.expiry_system_minutes)


def max_attempts(policy: DispatchConfig, category: str) -> int:
    """Tries a recipient gets for a message of CATEGORY (system messages count as urgent)."""
    if category == Category.FEEDBACK:
        return policy.max_attempts_feedback
    if category == Category.PREVENTION:
        return policy.max_attempts_prevention
    return policy.max_attempts_urgent


def voicemail_recall(policy: DispatchConfig, category: str) -> timedelta | None:
    """How long after a voicemail the member is called again (once), or None for never."""
    minutes = {Category.URGENT.value: policy.voicemail_recall_minutes_urgent,
               Category.FEEDBACK.value: policy.voicemail_recall_minutes_feedback,
               Category.PREVENTION.value: policy.voicemail_recall_minutes_prevention}.get(category, 0.0)
    return timedelta(minutes=minutes) if minutes > 0 else None


def backoff(policy: DispatchConfig, attempts: int) -> timedelta:
    """The wait after the ATTEMPTS-th failed try. Exponential: base, 2*base, 4*base ... capped at backoff_max."""
    try:
        doubled = policy.backoff_base * 2.0 ** max(0, attempts - 1)
    except OverflowError:
        # max_attempts_* has no upper bound, and past ~1000 doublings a float overflows: long past the cap.
        doubled = policy.backoff_max
    return timedelta(seconds=min(policy.backoff_max, doubled))


def backoff_schedule(policy: DispatchConfig, attempts: int) -> list[timedelta]:
    """The waits between ATTEMPTS tries, for documentation and the preview."""
    return [backoff(policy, n) for n in range(1, attempts)]
