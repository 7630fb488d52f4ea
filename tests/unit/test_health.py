"""sd_notify and the watchdog timings derived from systemd's environment."""
from __future__ import annotations

import socket

import pytest

from gatewayd.health import Notifier, stuck_after, watchdog_interval


@pytest.mark.parametrize("usec, expected", [("60000000", 30.0), ("3000000", 1.5), (None, None), ("", None),
                                            ("junk", None)])
def test_watchdog_interval_is_half_of_watchdog_sec(monkeypatch, usec, expected):
    _watchdog_usec(monkeypatch, usec)
    assert watchdog_interval() == expected


@pytest.mark.parametrize("usec, expected", [("60000000", 60.0), ("0", 120.0), (None, 120.0)])
def test_stuck_after_is_watchdog_sec_or_the_default(monkeypatch, usec, expected):
    _watchdog_usec(monkeypatch, usec)
    assert stuck_after() == expected


def _watchdog_usec(monkeypatch, usec):
    """systemd's WATCHDOG_USEC as the test sets it (None: not set at all)."""
    if usec is None:
        monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    else:
        monkeypatch.setenv("WATCHDOG_USEC", usec)


def test_notifier_sends_ready_and_status_on_the_socket(monkeypatch, tmp_path):
    path = str(tmp_path / "n")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind(path)
        s.settimeout(5)
        monkeypatch.setenv("NOTIFY_SOCKET", path)
        Notifier().ready("dispatching")
        assert s.recv(1024).decode().split("\n") == ["READY=1", "STATUS=dispatching"]


def test_notifier_without_socket_does_nothing(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    n = Notifier()
    n.ready()
    n.watchdog()
    assert not n.enabled
