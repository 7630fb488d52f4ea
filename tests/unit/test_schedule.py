"""schedule.py: quiet hours (across midnight, on Brussels' clock changes), expiry, backoff, tries, voicemail recall."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from gatewayd.config import DispatchConfig
from gatewayd.model import Category
from gatewayd.schedule import (
    backoff,
    backoff_schedule,
    expiry_for,
    in_quiet_hours,
    max_attempts,
    system_expiry,
    voicemail_recall,
)
from tests.conftest import FAST_POLICY

DEFAULTS = DispatchConfig()
BRUSSELS = "Europe/Brussels"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


# ---------------------------------------------------------------- quiet hours
@pytest.mark.parametrize("at,quiet", [((21, 59, 59), False), ((22, 0, 0), True), ((23, 59, 59), True),
                                      ((0, 0, 0), True), ((6, 59, 59), True), ((7, 0, 0), False), ((12, 0, 0), False)])
def test_a_window_across_midnight_starts_at_its_start_and_ends_before_its_end(at, quiet):
    assert in_quiet_hours(utc(2026, 12, 2, *at), "22:00-07:00", "UTC") is quiet


@pytest.mark.parametrize("at,quiet", [((8, 59), False), ((9, 0), True), ((16, 59), True), ((17, 0), False),
                                      ((23, 0), False)])
def test_a_window_within_one_day(at, quiet):
    assert in_quiet_hours(utc(2026, 12, 2, *at), "09:00-17:00", "UTC") is quiet


@pytest.mark.parametrize("spec", ["", "07:00-07:00"])
def test_no_window_and_an_empty_window_are_never_quiet(spec):
    assert not any(in_quiet_hours(utc(2026, 12, 2, h, 30), spec, BRUSSELS) for h in range(24))


@pytest.mark.parametrize("at,window", [("23:59:30", "00:00-23:59"), ("23:59:30", "23:00-01:00"),
                                       ("00:00:10", "23:00-01:00")])
def test_quiet_hours_window_around_midnight(at, window):
    h, m, sec = map(int, at.split(":"))
    now = datetime(2026, 12, 2, h, m, sec, tzinfo=timezone.utc)
    # The old test's window ends at 23:59: its last minute is outside, which is why that test flaked.
    assert in_quiet_hours(now, window, "UTC") is (window != "00:00-23:59")


@pytest.mark.parametrize("hour,expected", [(23, True), (3, True), (7, False), (12, False), (21, False)])
def test_quiet_hours_window_in_brussels_time(hour, expected):
    # 2026-07-01 is summer time: Brussels is UTC+2.
    now = datetime(2026, 7, 1, (hour - 2) % 24, 30, tzinfo=timezone.utc)
    assert in_quiet_hours(now, "22:00-07:00", "Europe/Brussels") is expected


# Brussels moves its clocks on 2026-03-29 (02:00 CET -> 03:00 CEST) and 2026-10-25 (03:00 CEST -> 02:00 CET):
# the same UTC instant is in the window on one side of the change and out of it on the other.
@pytest.mark.parametrize("when,quiet", [
    (utc(2026, 3, 28, 5, 30), True),     # 06:30 CET
    (utc(2026, 3, 29, 5, 30), False),    # 07:30 CEST: the window ended an hour earlier in UTC
    (utc(2026, 3, 28, 20, 30), False),   # 21:30 CET
    (utc(2026, 3, 29, 20, 30), True),    # 22:30 CEST
    (utc(2026, 10, 24, 5, 30), False),   # 07:30 CEST
    (utc(2026, 10, 25, 5, 30), True),    # 06:30 CET: the window ends an hour later in UTC
    (utc(2026, 10, 24, 20, 30), True),   # 22:30 CEST
    (utc(2026, 10, 25, 20, 30), False),  # 21:30 CET
], ids=lambda v: v.isoformat() if isinstance(v, datetime) else str(v))
def test_quiet_hours_follow_the_brussels_clock_across_the_dst_changes(when, quiet):
    assert in_quiet_hours(when, "22:00-07:00", BRUSSELS) is quiet


@pytest.mark.parametrize("when,quiet", [
    (utc(2026, 3, 29, 0, 59), False),    # 01:59 CET, then straight to 03:00 CEST: 02:xx never comes
    (utc(2026, 3, 29, 1, 0), False),     # 03:00 CEST
    (utc(2026, 10, 25, 0, 30), True),    # 02:30 CEST, the first time
    (utc(2026, 10, 25, 1, 30), True),    # 02:30 CET, the second time
    (utc(2026, 10, 25, 2, 0), False),    # 03:00 CET
], ids=lambda v: v.isoformat() if isinstance(v, datetime) else str(v))
def test_a_window_in_the_hour_the_clock_skips_or_repeats_follows_the_wall_clock(when, quiet):
    assert in_quiet_hours(when, "02:00-03:00", BRUSSELS) is quiet


def test_the_same_instant_given_in_another_zone_gives_the_same_answer():
    instant = utc(2026, 12, 2, 21, 30)                   # 22:30 in Brussels
    elsewhere = instant.astimezone(timezone(timedelta(hours=-5)))
    assert in_quiet_hours(instant, "22:00-07:00", BRUSSELS) is in_quiet_hours(elsewhere, "22:00-07:00", BRUSSELS)
    assert in_quiet_hours(elsewhere, "22:00-07:00", BRUSSELS) is True


# ---------------------------------------------------------------- expiry
def test_expiry_defaults_per_category():
    assert [expiry_for(DEFAULTS, c) for c in (Category.URGENT, Category.FEEDBACK, Category.PREVENTION)] == [
        timedelta(hours=2), timedelta(days=1), timedelta(days=3)]


def test_each_category_expires_after_its_own_setting():
    policy = replace(DEFAULTS, expiry_urgent_minutes=11, expiry_feedback_minutes=22, expiry_prevention_minutes=33)
    assert {c: expiry_for(policy, c) for c in Category} == {
        Category.URGENT: timedelta(minutes=11), Category.FEEDBACK: timedelta(minutes=22),
        Category.PREVENTION: timedelta(minutes=33)}
    assert expiry_for(policy, Category("feedback")) == timedelta(minutes=22)   # as a row holds it


def test_system_messages_expire_after_their_own_setting():
    assert system_expiry(replace(DEFAULTS, expiry_system_minutes=44)) == timedelta(minutes=44)


# ---------------------------------------------------------------- backoff
def test_backoff_doubles_from_its_base_and_stops_at_its_cap():
    waits = [backoff(DEFAULTS, n).total_seconds() for n in range(1, 9)]
    assert waits == [30, 60, 120, 240, 480, 900, 900, 900]


def test_backoff_doubles_and_is_capped():
    assert [backoff(FAST_POLICY, n).total_seconds() for n in (1, 2, 3, 10)] == [0.05, 0.1, 0.2, 0.2]


def test_backoff_before_any_try_is_the_base():
    assert backoff(DEFAULTS, 0) == timedelta(seconds=30)


@pytest.mark.parametrize("attempts", [1025, 5000])
def test_backoff_stays_at_its_cap_for_a_very_long_retry_budget(attempts):
    """max_attempts_* has no upper bound: a recipient's 1025th try must wait the cap, not raise
    OverflowError (2 ** 1024 does not fit a float) in the middle of recording the outcome."""
    assert backoff(DEFAULTS, attempts) == timedelta(seconds=DEFAULTS.backoff_max)


def test_backoff_schedule_lists_the_waits_between_the_tries():
    assert backoff_schedule(DEFAULTS, 5) == [timedelta(seconds=s) for s in (30, 60, 120, 240)]
    assert backoff_schedule(DEFAULTS, 1) == []


# ---------------------------------------------------------------- tries
def test_max_attempts_defaults_per_category():
    assert [max_attempts(DEFAULTS, c) for c in (Category.URGENT, Category.FEEDBACK, Category.PREVENTION)] == [5, 3, 3]


def test_each_category_gets_its_own_number_of_tries():
    policy = replace(DEFAULTS, max_attempts_urgent=7, max_attempts_feedback=4, max_attempts_prevention=2)
    assert {c: max_attempts(policy, c) for c in Category} == {
        Category.URGENT: 7, Category.FEEDBACK: 4, Category.PREVENTION: 2}
    assert max_attempts(policy, Category.PREVENTION.value) == 2          # as a row holds it


# ---------------------------------------------------------------- voicemail recall
def test_voicemail_recall_by_default_only_for_urgent():
    assert voicemail_recall(DEFAULTS, Category.URGENT) == timedelta(minutes=30)
    assert voicemail_recall(DEFAULTS, Category.FEEDBACK) is None
    assert voicemail_recall(DEFAULTS, Category.PREVENTION) is None


def test_voicemail_recall_is_switched_per_category():
    policy = replace(DEFAULTS, voicemail_recall_minutes_urgent=0.0, voicemail_recall_minutes_feedback=12.5,
                     voicemail_recall_minutes_prevention=60.0)
    assert {c: voicemail_recall(policy, c) for c in Category} == {
        Category.URGENT: None, Category.FEEDBACK: timedelta(minutes=12.5), Category.PREVENTION: timedelta(hours=1)}
    assert voicemail_recall(policy, Category.FEEDBACK.value) == timedelta(minutes=12.5)   # as a row holds it
