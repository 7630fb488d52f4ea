"""`doctor()` against emulated modems: what it says is fine and what to fix."""
from __future__ import annotations

import pytest

from gatewayd.channels.modem import doctor
from tests.fixtures.modem import HUAWEI, Profile, modem_config, modem_factory  # noqa: F401

pytestmark = pytest.mark.timeout(60)


def by_what(checks):
    return {c.what.split(" ", 2)[-1]: c for c in checks}


def test_healthy_modem_passes_every_check(modem_factory):
    emu = modem_factory.emulator()
    checks = doctor(modem_config(emu.port))
    assert all(c.ok for c in checks) and len(checks) == 7


def test_reports_manufacturer_model_signal_and_operator(modem_factory):
    emu = modem_factory.emulator()
    checks = by_what(doctor(modem_config(emu.port)))
    assert checks["model"].detail == "Emulated EMU-1"
    assert checks["signal"].detail.startswith("21/31")
    assert "Proximus" in checks["network"].detail


def test_quirky_modem_passes(modem_factory):
    emu = modem_factory.emulator(HUAWEI)
    assert all(c.ok for c in doctor(modem_config(emu.port)))


def test_missing_port_says_to_check_the_plug_and_dmesg(tmp_path):
    [check] = doctor(modem_config(str(tmp_path / "ttyUSB9")))
    assert not check.ok and "is the modem plugged in? see dmesg" in check.detail


def test_silent_port_says_wrong_port_or_hung(modem_factory):
    emu = modem_factory.emulator()
    emu.freeze(60, reset_clears=False)
    checks = doctor(modem_config(emu.port, command_timeout=0.5))
    assert not checks[-1].ok and "does not answer AT" in checks[-1].detail and "wrong port" in checks[-1].detail


def test_wrong_pin_is_named_and_tried_once(modem_factory):
    emu = modem_factory.emulator(Profile(pin="4321"))
    checks = by_what(doctor(modem_config(emu.port, pin="1111")))
    assert not checks["SIM"].ok and "rejected the configured PIN" in checks["SIM"].detail
    assert [c for c in emu.commands if c.startswith("AT+CPIN=")] == ["AT+CPIN=1111"]


def test_no_signal_says_check_the_antenna(modem_factory):
    emu = modem_factory.emulator(Profile(rssi=99, registration=2))
    checks = by_what(doctor(modem_config(emu.port)))
    assert not checks["signal"].ok and "antenna" in checks["signal"].detail


def test_registration_denied_says_check_the_sim(modem_factory):
    emu = modem_factory.emulator(Profile(registration=3))
    checks = by_what(doctor(modem_config(emu.port)))
    assert not checks["network"].ok and "activated" in checks["network"].detail


def test_port_held_by_the_daemon_is_reported_busy(modem_factory):
    emu, ch, _ = modem_factory()
    [check] = doctor(modem_config(emu.port))
    assert not check.ok and "in use" in check.detail
