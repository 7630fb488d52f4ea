"""scripts/install --prefix: a complete test install, twice (idempotent)."""
from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UNITS = ["gatewayd.service", "gatewayd-web.service", "gatewayd-purge.service", "gatewayd-purge.timer",
         "gatewayd-backup.service", "gatewayd-backup.timer"]

pytestmark = pytest.mark.timeout(900)


def _source_copy(dst: Path) -> Path:
    """A frozen copy of the checkout: teammates editing the tree must not change what is installed."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for d in ("gatewayd", "web", "systemd", "scripts"):
        shutil.copytree(REPO / d, dst / d, ignore=ignore)
    for f in ("pyproject.toml", "config.example.toml", "README.md"):
        if (REPO / f).exists():
            shutil.copy2(REPO / f, dst / f)
    return dst


def _install(src: Path, prefix: Path) -> subprocess.CompletedProcess:
    p = subprocess.run(["bash", str(src / "scripts" / "install"), "--prefix", str(prefix)], capture_output=True,
                       text=True, timeout=800, env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    assert p.returncode == 0, f"install failed:\n{p.stdout}\n{p.stderr[-3000:]}"
    return p


REAL_PATHS = [Path("/opt/gatewayd"), Path("/etc/gatewayd"), Path("/var/lib/gatewayd"),
              Path("/etc/systemd/system/gatewayd.service")]


def _real_state() -> dict[Path, float | None]:
    return {p: p.stat().st_mtime if p.exists() else None for p in REAL_PATHS}


@pytest.fixture(scope="module")
def real_before():
    return _real_state()


@pytest.fixture(scope="module")
def installed(tmp_path_factory, real_before):
    """(source, prefix, first run) after one install."""
    src = _source_copy(tmp_path_factory.mktemp("src"))
    prefix = tmp_path_factory.mktemp("root")
    return src, prefix, _install(src, prefix)


def _conf(prefix: Path) -> Path:
    return prefix / "etc" / "gatewayd" / "gatewayd.toml"


def _gatewayd(prefix: Path, *args: str) -> subprocess.CompletedProcess:
    exe = prefix / "opt" / "gatewayd" / "venv" / "bin" / "gatewayd"
    return subprocess.run([str(exe), "-c", str(_conf(prefix)), *args], capture_output=True, text=True, timeout=120)


def test_install_gives_a_working_program_config_and_database(installed):
    _src, prefix, _ = installed
    p = _gatewayd(prefix, "status", "--json")
    assert p.returncode == 0, p.stderr
    assert (prefix / "var" / "lib" / "gatewayd" / "gatewayd.db").is_file()


def test_config_points_into_the_prefix_with_a_fresh_web_secret(installed):
    _src, prefix, _ = installed
    text = _conf(prefix).read_text()
    assert f"sqlite:///{prefix}/var/lib/gatewayd/gatewayd.db" in text
    assert "change-me-to-a-long-random-string" not in text
    assert oct(_conf(prefix).stat().st_mode & 0o777) == "0o640"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_installed_units_verify(installed):
    _src, prefix, _ = installed
    units = [str(prefix / "etc" / "systemd" / "system" / u) for u in UNITS]
    p = subprocess.run(["systemd-analyze", "verify", *units], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert str(prefix / "opt" / "gatewayd" / "venv" / "bin" / "gatewayd") in Path(units[0]).read_text()


def test_second_install_changes_nothing_and_keeps_data(installed):
    src, prefix, _ = installed
    conf_before = _conf(prefix).read_text()
    units_before = {u: (prefix / "etc" / "systemd" / "system" / u).read_text() for u in UNITS}
    assert _gatewayd(prefix, "network", "add", "BIN Kessel-Lo").returncode == 0

    second = _install(src, prefix)

    assert "up to date" in second.stdout
    assert "keeping the existing" in second.stdout
    assert _conf(prefix).read_text() == conf_before
    assert {u: (prefix / "etc" / "systemd" / "system" / u).read_text() for u in UNITS} == units_before
    with sqlite3.connect(prefix / "var" / "lib" / "gatewayd" / "gatewayd.db") as c:
        assert c.execute("SELECT name FROM network").fetchall() == [("BIN Kessel-Lo",)]


def test_install_touches_nothing_outside_the_prefix(installed, real_before):
    _src, _prefix, first = installed
    assert "not enabled" in first.stdout
    assert _real_state() == real_before


def _exec_start(unit: Path) -> str:
    """The ExecStart= command line as systemd hands it to the program ($$ and %% unescaped)."""
    line = next(ln for ln in unit.read_text().splitlines() if ln.startswith("ExecStart="))
    return line.removeprefix("ExecStart=").replace("$$", "$").replace("%%", "%")


def test_installed_backup_timer_command_writes_a_weekday_backup(installed):
    _src, prefix, _ = installed
    cmd = _exec_start(prefix / "etc" / "systemd" / "system" / "gatewayd-backup.service")
    assert cmd.startswith("/bin/sh -c '") and cmd.endswith("'")
    p = subprocess.run(["/bin/sh", "-c", cmd[len("/bin/sh -c '"):-1]], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    weekday = subprocess.run(["date", "+%a"], capture_output=True, text=True).stdout.strip()
    assert (prefix / "var" / "lib" / "gatewayd" / "backups" / f"gatewayd-{weekday}.db").is_file()


def test_installed_purge_timer_command_runs(installed):
    _src, prefix, _ = installed
    cmd = _exec_start(prefix / "etc" / "systemd" / "system" / "gatewayd-purge.service").split()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "purged" in p.stdout
