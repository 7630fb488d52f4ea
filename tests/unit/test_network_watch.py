"""NetworkWatch: down only after refused sends in a row; back after the hold-off or new evidence."""
from __future__ import annotations

import time

from gatewayd.channels.network_watch import NETWORK_FAILURES_DOWN, NetworkWatch


def test_down_only_after_failures_in_a_row():
    w = NetworkWatch()
    assert not w.network_failure(None)
    w.other_failure()                          # a recipient error breaks the row
    assert not w.network_failure(None)
    assert w.network_failure(None) and w.down and NETWORK_FAILURES_DOWN == 2


def test_a_success_resets_the_row_and_the_hold_off():
    w = NetworkWatch(hold=1.0)
    w.network_failure(False), w.network_failure(False)
    w.try_again()
    assert w.network_failure(False) and w.hold == 2.0          # on trial: one more failure, longer hold
    w.try_again()
    w.sent()
    w.network_failure(False), w.network_failure(False)
    assert w.hold == 1.0


def test_hold_off_grows_to_five_minutes():
    w = NetworkWatch()
    holds = []
    for _ in range(8):
        w.network_failure(False), w.network_failure(False)
        holds.append(w.hold)
        w.try_again()
        w.failures = 0
    assert holds == [10, 20, 40, 80, 160, 300, 300, 300]


def test_back_after_the_hold_off_or_when_newly_registered():
    w = NetworkWatch(hold=0.2)
    w.network_failure(False), w.network_failure(False)
    assert not w.may_try_again(False)
    time.sleep(0.25)
    assert w.may_try_again(False)
    w2 = NetworkWatch(hold=60)
    w2.network_failure(False), w2.network_failure(False)
    assert not w2.may_try_again(None) and w2.may_try_again(True)


def test_registered_all_along_waits_for_the_hold_off():
    w = NetworkWatch(hold=60)
    w.network_failure(True), w.network_failure(True)           # LTE said registered, sends failed anyway
    assert not w.may_try_again(True)
