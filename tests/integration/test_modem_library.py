"""Why the modem channel drives pyserial itself: python-gsmmodem-new (0.13) measured
against the same emulated modems. If a future release fixes these, these tests fail
and tell us the library is worth another look."""
from __future__ import annotations

import time
from dataclasses import replace

import pytest
from gsmmodem.exceptions import CommandError
from gsmmodem.modem import GsmModem
from gsmmodem.serial_comms import SerialComms

from tests.emulators.modem import HUAWEI, WELL_BEHAVED, ModemEmulator

pytestmark = pytest.mark.timeout(60)


def test_library_connect_gives_up_on_a_modem_that_refuses_cmee(tmp_path):
    with ModemEmulator(str(tmp_path / "m0"), HUAWEI) as emu:
        modem = GsmModem(emu.port, 115200)
        try:
            with pytest.raises(CommandError, match="CMEE"):
                modem.connect()
        finally:
            try:
                modem.close()          # its reader thread is still running on the port
            except Exception:
                pass


def test_library_swallows_a_notification_that_arrives_mid_command(tmp_path):
    with ModemEmulator(str(tmp_path / "m1"), WELL_BEHAVED) as emu:
        notes: list = []
        comms = SerialComms(emu.port, 115200, notifyCallbackFunc=notes.append)
        comms.connect()
        try:
            comms.write("ATE0\r")
            emu.profile = replace(emu.profile, chatter=('+CMTI: "SM",1',), chatter_every=1)
            answer = comms.write("AT+CSQ\r")
            time.sleep(0.3)
        finally:
            comms.close()
    assert '+CMTI: "SM",1' in answer and notes == []
