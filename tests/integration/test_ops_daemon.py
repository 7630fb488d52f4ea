"""The real daemon under a systemd-like supervisor: READY, WATCHDOG, a stuck loop, the daemon lock.

The test plays systemd: it binds the NOTIFY_SOCKET datagram socket, sets
WATCHDOG_USEC and runs `gatewayd -c CONF run` as a subprocess with an
emulated device. "Stuck" is made real, not simulated: the test holds an
exclusive SQLite lock (BEGIN EXCLUSIVE) so every write of the dispatch loop
blocks, as it would on a hung SD card or a process that never commits. The
process stays alive and its heartbeat thread keeps running, so only the
health check can stop the WATCHDOG messages.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(180)

WATCHDOG_SEC = 4.0


class NotifySocket:
    """A unix datagram socket that records what the daemon sends, with arrival times."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="gwn", dir="/tmp")   # short: sun_path is ~107 bytes
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            with self._lock:
                for line in data.decode().splitlines():
                    self.messages.append((time.monotonic(), line))

    def lines(self, name: str, since: float = 0.0, until: float = float("inf")) -> list[float]:
        """Arrival times of NAME=... lines in [SINCE, UNTIL)."""
        with self._lock:
            return [t for t, line in self.messages if line.startswith(name + "=") and since <= t < until]

    def wait_for(self, name: str, count: int = 1, since: float = 0.0, timeout: float = 60.0) -> list[float]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.lines(name, since)
            if len(got) >= count:
                return got
            time.sleep(0.05)
        raise AssertionError(f"{count} x {name} not received within {timeout} s; got {self.messages[-10:]}")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Daemon:
    def __init__(self, tmp: Path, extra_toml: str = ""):
        self.db = tmp / "gatewayd.db"
        self.conf = tmp / "gatewayd.toml"
        self.log = tmp / "daemon.log"
        self.conf.write_text(f'[database]\nurl = "sqlite:///{self.db}"\n\n[[emulated]]\nname = "sim1"\n'
                             f'latency = 0.05\n\n[dispatch]\nquiet_hours = ""\nnode = "ops-test"\n{extra_toml}')
        self.proc: subprocess.Popen | None = None

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "gatewayd", "-c", str(self.conf), *args],
                              capture_output=True, text=True, timeout=120)

    def prepare(self) -> None:
        for args in (("init-db",), ("network", "add", "N"), ("member", "add", "--network", "N", "--phone",
                                                                "0470123456"),
                     ("alert", "send", "--network", "N", "--category", "urgent", "--text", "hi")):
            p = self.cli(*args)
            assert p.returncode == 0, p.stderr

    def start(self, notify: NotifySocket) -> None:
        env = {**os.environ, "NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": str(int(WATCHDOG_SEC * 1e6))}
        self.proc = subprocess.Popen([sys.executable, "-m", "gatewayd", "-c", str(self.conf), "run"],
                                     stdout=self.log.open("w"), stderr=subprocess.STDOUT, env=env)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture
def notify():
    n = NotifySocket()
    yield n
    n.close()


@pytest.fixture
def daemon(tmp_path, notify):
    d = Daemon(tmp_path)
    d.prepare()
    d.start(notify)
    yield d
    d.stop()


def _hold_exclusive(db: Path) -> sqlite3.Connection:
    """Take SQLite's write lock on DB and keep it (the caller closes the connection)."""
    conn = sqlite3.connect(str(db), timeout=60, isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    return conn


def test_daemon_sends_ready_once_running(daemon, notify):
    notify.wait_for("READY")
    assert daemon.proc.poll() is None


def test_daemon_sends_watchdog_regularly_while_healthy(daemon, notify):
    ready = notify.wait_for("READY")[0]
    beats = notify.wait_for("WATCHDOG", count=4, since=ready, timeout=30)
    gaps = [b - a for a, b in zip(beats, beats[1:])]
    assert max(gaps) < WATCHDOG_SEC, gaps


def test_watchdog_stops_while_the_dispatch_loop_is_stuck(daemon, notify):
    ready = notify.wait_for("READY")[0]
    notify.wait_for("WATCHDOG", count=2, since=ready, timeout=30)
    conn = _hold_exclusive(daemon.db)
    try:
        locked_at = time.monotonic()
        # The loop may finish the pass it is in; after WatchdogSec without a
        # completed pass the heartbeat must stop. Give it that plus slack, then watch.
        quiet_from = locked_at + WATCHDOG_SEC + 3.0
        time.sleep(quiet_from + 3 * WATCHDOG_SEC - time.monotonic())
        assert notify.lines("WATCHDOG", since=quiet_from) == []
        assert daemon.proc.poll() is None, "the process must stay alive: stuck, not dead"
    finally:
        conn.rollback()
        conn.close()


def test_watchdog_resumes_when_the_loop_gets_going_again(daemon, notify):
    ready = notify.wait_for("READY")[0]
    notify.wait_for("WATCHDOG", count=2, since=ready, timeout=30)
    conn = _hold_exclusive(daemon.db)
    time.sleep(WATCHDOG_SEC + 3.0)
    conn.rollback()
    conn.close()
    released = time.monotonic()
    notify.wait_for("WATCHDOG", count=2, since=released, timeout=30)


def test_restore_is_refused_while_the_daemon_runs(daemon, notify, tmp_path):
    notify.wait_for("READY")
    backup = tmp_path / "backup.db"
    assert daemon.cli("backup", str(backup)).returncode == 0
    p = daemon.cli("restore", str(backup))
    assert p.returncode == 2
    assert "stop it first" in p.stderr


def test_a_second_daemon_on_the_same_database_is_refused(daemon, notify):
    notify.wait_for("READY")
    p = subprocess.run([sys.executable, "-m", "gatewayd", "-c", str(daemon.conf), "run"], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 2
    assert "is using" in p.stderr


WEB_KEY = "Zq8v2LwV0b9XkD1yF7tR3uH6nM4pS5aG"


def test_daemon_log_holds_no_numbers_or_secrets(tmp_path, notify):
    d = Daemon(tmp_path, f'\n[logging]\nlevel = "DEBUG"\n\n[web]\nsecret_key = "{WEB_KEY}"\n')
    d.prepare()
    d.start(notify)
    try:
        notify.wait_for("READY")
        deadline = time.monotonic() + 60
        while "sent" not in d.log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        d.stop()
    log = d.log.read_text()
    assert "+32470****56" in log            # the send was logged, redacted
    for leak in ("+32470123456", "0470123456", "32470123456", WEB_KEY):
        assert leak not in log, leak


def _store(d: Daemon):
    from gatewayd.db import make_engine
    from gatewayd.store import Store
    return Store(make_engine(f"sqlite:///{d.db}"))


def test_metrics_and_healthz_reflect_the_running_daemon(daemon, notify):
    from prometheus_client.parser import text_string_to_metric_families

    from gatewayd.metrics import healthz, render_metrics
    notify.wait_for("READY")
    store = _store(daemon)
    try:
        deadline = time.monotonic() + 60
        sent = {}
        while time.monotonic() < deadline:
            text = render_metrics(store).decode()
            sent = {s.labels["device"]: s.value for f in text_string_to_metric_families(text) for s in f.samples
                    if s.name == "gatewayd_device_sent_total"}
            if sent.get("sim1") == 1:
                break
            time.sleep(0.2)
        assert sent == {"sim1": 1}
        ok, report = healthz(store)
        assert ok, report
    finally:
        store.engine.dispose()


def test_healthz_fails_once_the_daemon_is_gone(daemon, notify):
    from datetime import timedelta

    from gatewayd.metrics import DAEMON_STALE_AFTER, healthz
    from gatewayd.model import utcnow
    notify.wait_for("READY")
    store = _store(daemon)
    try:
        deadline = time.monotonic() + 30
        while not healthz(store)[0] and time.monotonic() < deadline:
            time.sleep(0.2)
        daemon.proc.kill()
        daemon.proc.wait(30)
        ok, report = healthz(store, utcnow() + timedelta(seconds=DAEMON_STALE_AFTER + 5))
        assert not ok and report["checks"]["daemon"].startswith("not running")
    finally:
        store.engine.dispose()
