"""`gatewayd alert send` through the running daemon's control socket, and without it."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from tests.fixtures.daemon import Gateway


@pytest.fixture
def gw(tmp_path):
    sock = tmp_path / "control.sock"
    g = Gateway(tmp_path, '[[emulated]]\nname = "sim1"\nlatency = 0.0\n', f'control_socket = "{sock}"\n')
    g.sock = sock
    g.cli("init-db")
    g.cli("network", "add", "N")
    g.cli("member", "add", "--network", "N", "--phone", "0470123456")
    yield g
    g.stop()


def send(g: Gateway, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-X", "importtime", "-m", "gatewayd", "-c", str(g.conf), "alert", "send",
                           "--category", "urgent", "--text", "Inbraak", *extra],
                          capture_output=True, text=True, timeout=60)


def test_alert_send_goes_through_the_daemon_without_importing_sqlalchemy(gw):
    gw.start()
    gw.wait_for(lambda: gw.sock.exists())
    p = send(gw, "--network", "N")
    assert p.returncode == 0, p.stderr
    alert_id = int(p.stdout)
    assert "sqlalchemy" not in p.stderr            # -X importtime lists every import on stderr
    gw.wait_for(lambda: gw.status(alert_id)["state"] == "done")
    assert "1 sms" in p.stderr


def test_bad_input_through_the_daemon_is_one_line_exit_2(gw):
    gw.start()
    gw.wait_for(lambda: gw.sock.exists())
    p = send(gw, "--network", "Nowhere")
    errors = [ln for ln in p.stderr.splitlines() if not ln.startswith("import time:")]
    assert p.returncode == 2 and errors == ["gatewayd: network 'Nowhere' does not exist"]


def test_without_a_daemon_the_cli_writes_itself(gw):
    gw.start()
    gw.wait_for(lambda: gw.sock.exists())
    gw.kill(signal.SIGKILL)                        # leaves a stale socket file behind
    assert os.path.exists(gw.sock)
    p = send(gw, "--network", "N")
    assert p.returncode == 0, p.stderr
    assert gw.status(int(p.stdout))["messages"] == {"queued": 1}
