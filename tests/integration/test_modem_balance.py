"""Prepaid SIMs: the balance USSD tells when a SIM runs out of credit, and the keeper hears of it."""
from __future__ import annotations

from dataclasses import replace

import pytest

from gatewayd.channels.modem import ModemChannel, balance_amount, parse_cusd
from gatewayd.config import ConfigError, KeeperConfig, ModemConfig, SmsConfig, parse_config
from gatewayd.keeper import Keeper
from gatewayd.model import utcnow
from tests.emulators.modem import WELL_BEHAVED, ModemEmulator
from tests.fixtures.modem import wait_for


@pytest.mark.parametrize("line,text", [
    ('+CUSD: 0,"Uw saldo: EUR 3,50",15', "Uw saldo: EUR 3,50"),
    ('+CUSD: 0,"0055007700200073",72', "Uw s"),          # UCS-2 hex
    ("+CUSD: 4", None),
])
def test_parse_cusd(line, text):
    assert parse_cusd(line) == text


@pytest.mark.parametrize("text,amount", [("Uw saldo: EUR 3,50", 3.5), ("Solde 12.00 EUR", 12.0),
                                         ("Balance: 0 EUR", 0.0), ("unknown service", None)])
def test_balance_amount(text, amount):
    assert balance_amount(text) == amount


def test_balance_code_cannot_carry_at_commands():
    with pytest.raises(ConfigError, match="balance_ussd"):
        parse_config({"modems": [{"name": "m", "port": "/dev/x", "balance_ussd": '*121#",\r\nAT+CMGD=1,4'}]})


def _channel(emu: ModemEmulator, **cfg) -> ModemChannel:
    ch = ModemChannel(ModemConfig(name="sim1", port=emu.port, command_timeout=5.0, balance_ussd="*121#", **cfg),
                      SmsConfig(), poll_interval=0.3)
    ch.open(lambda event: None)
    return ch


def test_empty_prepaid_sim_is_reported_out_of_credit(tmp_path, store):
    with ModemEmulator(str(tmp_path / "m0"), replace(WELL_BEHAVED, balance_text="Uw saldo: EUR 0,20")) as emu:
        ch = _channel(emu, balance_min=1.0)
        try:
            wait_for(lambda: "balance" in ch.health().detail, 15, "a balance answer")
            assert ch.health().detail["balance"] == 0.2 and ch.health().detail["out_of_credit"] is True
            assert b'AT+CUSD=1,"*121#",15' in bytes(emu.wire_in)
            store.record_device("sim1", "sms", "n", ch.health())
            keeper = Keeper(KeeperConfig(email_to="k@example.be", smtp_host="127.0.0.1", smtp_port=9), store, "n")
            assert "no-credit:sim1" in keeper.problems(utcnow())
        finally:
            ch.close()


def test_sim_with_credit_is_fine(tmp_path):
    with ModemEmulator(str(tmp_path / "m1"), replace(WELL_BEHAVED, balance_text="Solde: 12,50 EUR")) as emu:
        ch = _channel(emu)
        try:
            wait_for(lambda: "balance" in ch.health().detail, 15, "a balance answer")
            assert ch.health().detail["out_of_credit"] is False
        finally:
            ch.close()


def test_modem_refusing_ussd_keeps_sending(tmp_path):
    with ModemEmulator(str(tmp_path / "m2"), WELL_BEHAVED) as emu:
        ch = _channel(emu)
        try:
            wait_for(lambda: b"AT+CUSD" in bytes(emu.wire_in), 15, "a balance request")
            assert ch.health().state.value == "up" and "out_of_credit" not in ch.health().detail
        finally:
            ch.close()
