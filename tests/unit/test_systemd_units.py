"""The systemd units verify, and carry the properties the appliance relies on."""
from __future__ import annotations

import configparser
import shutil
import subprocess
from pathlib import Path

import pytest

SYSTEMD = Path(__file__).resolve().parents[2] / "systemd"
UNITS = ["gatewayd.service", "gatewayd-web.service", "gatewayd-purge.service", "gatewayd-purge.timer",
         "gatewayd-backup.service", "gatewayd-backup.timer"]

needs_systemd = pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")


def _install_units(tmp_path: Path) -> list[Path]:
    """The units with /opt/gatewayd pointing at a stand-in executable under TMP_PATH."""
    app = tmp_path / "opt" / "gatewayd"
    exe = app / "venv" / "bin" / "gatewayd"
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    out = []
    for name in UNITS:
        text = (SYSTEMD / name).read_text().replace("/opt/gatewayd", str(app))
        (tmp_path / name).write_text(text)
        out.append(tmp_path / name)
    return out


def _service(name: str) -> configparser.ConfigParser:
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str
    cp.read_string((SYSTEMD / name).read_text())
    return cp


@needs_systemd
def test_units_pass_systemd_analyze_verify(tmp_path):
    units = _install_units(tmp_path)
    p = subprocess.run(["systemd-analyze", "verify", *map(str, units)], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    ours = [line for line in p.stderr.splitlines() if "gatewayd" in line]
    assert ours == [], "\n".join(ours)


@needs_systemd
def test_verify_fails_when_the_program_is_missing(tmp_path):
    """Guards the test above: verify does look at ExecStart."""
    units = _install_units(tmp_path)
    (tmp_path / "opt" / "gatewayd" / "venv" / "bin" / "gatewayd").unlink()
    p = subprocess.run(["systemd-analyze", "verify", str(units[0])], capture_output=True, text=True, timeout=120)
    assert p.returncode != 0


def test_daemon_unit_is_notify_with_watchdog_and_restart():
    s = _service("gatewayd.service")["Service"]
    assert s["Type"] == "notify"
    assert int(s["WatchdogSec"]) > 0
    assert s["Restart"] == "always"
    assert s["User"] == "gatewayd" and "dialout" in s["SupplementaryGroups"].split()


def test_daemon_unit_is_hardened_to_data_dir_and_serial_devices():
    text = (SYSTEMD / "gatewayd.service").read_text()
    for line in ("ProtectSystem=strict", "ReadWritePaths=/var/lib/gatewayd", "PrivateTmp=yes",
                 "NoNewPrivileges=yes", "DevicePolicy=closed", "DeviceAllow=char-ttyUSB rw",
                 "DeviceAllow=char-ttyACM rw"):
        assert line in text.splitlines(), line


def test_web_unit_has_no_devices():
    s = _service("gatewayd-web.service")["Service"]
    assert s["PrivateDevices"] == "yes" and s["DevicePolicy"] == "closed"
    assert s["ExecStart"].endswith(" web")


SERVICES = [u for u in UNITS if u.endswith(".service")]


@pytest.mark.parametrize("name", SERVICES)
def test_every_unit_touching_the_state_directory_keeps_it_private(name):
    """systemd creates and chmods a StateDirectory= to 0755 unless told otherwise: a backup
    unit without StateDirectoryMode= opened the member database to every local user."""
    s = _service(name)["Service"]
    assert "/var/lib/gatewayd" in (SYSTEMD / name).read_text()
    assert s.get("StateDirectory"), f"{name}: no StateDirectory= (systemd would not fix the directory's owner)"
    assert s.get("StateDirectoryMode") == "0750", f"{name}: StateDirectoryMode= is not 0750"
    assert s.get("UMask") == "0027", f"{name}: UMask= is not 0027 (files it writes would be other-readable)"


def _exposure(unit: Path) -> float:
    p = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(unit)], capture_output=True,
                       text=True, timeout=120)
    line = next(l for l in p.stdout.splitlines() if "Overall exposure level" in l)
    return float(line.split(":", 1)[1].split()[0])


@needs_systemd
@pytest.mark.parametrize("name", SERVICES)
def test_every_service_is_hardened_to_an_exposure_of_at_most_2_5(tmp_path, name):
    units = {u.name: u for u in _install_units(tmp_path)}
    assert _exposure(units[name]) <= 2.5
