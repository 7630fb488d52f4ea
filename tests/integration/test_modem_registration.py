"""Registration as evidence, not a gate (issue 12): LTE-only sticks, odd +CREG answers, a modem
that answers sensibly only after AT+CREG=2, unclear answers, and the network judged by send results."""
from __future__ import annotations

import re

import pytest

from gatewayd import sms
from gatewayd.channels.base import Delivery, DeviceState, OutcomeKind
from gatewayd.channels.modem import doctor
from tests.emulators.modem import LTE_ONLY, NEEDS_CREG2, REGISTRATION_PROFILES, THREE_FIELD_CREG
from tests.fixtures.modem import Profile, modem_config, modem_factory, wait_for  # noqa: F401

pytestmark = pytest.mark.timeout(60)

NUMBER = "+32470123456"
TEXTS = ["Inbraak gemeld in de Kerkstraat.", "Attention : cambriolage près de l'église – appelez le 101. " * 3,
         "Verdachte wagen {grijs} [1-AAA-111] ~ € 5"]


def deliver(text: str, mid: int = 1) -> Delivery:
    return Delivery(message_id=mid, number=NUMBER, text=text)


def pdus_on_the_wire(emu) -> list[str]:
    return [b.decode() for b in re.findall(rb"AT\+CMGS=\d+\r([0-9A-F]*)\x1a", bytes(emu.wire_in))]


@pytest.mark.parametrize("profile", REGISTRATION_PROFILES, ids=lambda p: p.name)
def test_profile_comes_up_and_sends_byte_exact(modem_factory, profile):
    emu, ch, _ = modem_factory(profile)
    assert ch.health().state is DeviceState.UP and ch.health().registered is True
    for i, text in enumerate(TEXTS):
        assert ch.send(deliver(text, i)).kind is OutcomeKind.SENT
    expected = [sms.plan(t, smart=True).text_to_send for t in TEXTS]
    assert emu.messages() == [(NUMBER, t) for t in expected]
    # Byte for byte: what went over the wire is what the emulator decoded and nothing else.
    assert pdus_on_the_wire(emu) == [s.pdu for s in emu.sent]


def test_lte_only_stick_shows_each_domain(modem_factory):
    emu, ch, _ = modem_factory(LTE_ONLY)
    detail = ch.health().detail
    assert detail["network"] == "registered"
    assert detail["registration"] == {"cs": "not registered, not searching", "ps": "not registered, not searching",
                                      "eps": "registered, home network"}


def test_three_field_answer_is_read_as_stat_lac_ci(modem_factory):
    emu, ch, _ = modem_factory(THREE_FIELD_CREG)
    assert ch.health().detail["registration"] == {"cs": "registered, home network", "ps": "not supported",
                                                  "eps": "not supported"}


def test_urc_mode_is_set_where_accepted(modem_factory):
    emu, ch, _ = modem_factory(NEEDS_CREG2)
    commands = [c.upper() for c in emu.commands]
    assert "AT+CREG=2" in commands and commands.index("AT+CREG=2") < commands.index("AT+CREG?")
    assert ch.health().detail["registration"]["cs"] == "registered, home network"


def test_registration_change_arrives_as_urc(modem_factory):
    emu, ch, _ = modem_factory(LTE_ONLY)          # polled only every 30 s: the URC must do it
    emu.set_registration(eps=5)
    wait_for(lambda: ch.health().detail["registration"]["eps"] == "registered, roaming", 10, "URC applied")


@pytest.mark.parametrize("stat", [0, 2, 3])
def test_clearly_not_registered_stays_usable_and_the_send_decides(modem_factory, stat):
    emu, ch, _ = modem_factory(Profile(registration=stat))
    h = ch.health()
    assert (h.state, h.registered, h.detail["network"]) == (DeviceState.UP, False, "not registered")
    assert ch.send(deliver("hallo")).kind is OutcomeKind.SENT and emu.messages() == [(NUMBER, "hallo")]


@pytest.mark.parametrize("profile", [Profile(registration=4), Profile(registration=0, eps_registration=8),
                                     Profile(refuse=("+CREG", "+CGREG", "+CEREG"))], ids=["unknown", "emergency",
                                                                                          "refused"])
def test_unclear_registration_is_usable_and_says_so(modem_factory, profile):
    emu, ch, _ = modem_factory(profile)
    h = ch.health()
    assert (h.state, h.registered, h.detail["network"]) == (DeviceState.UP, None, "registration unclear")
    assert ch.send(deliver("hallo")).kind is OutcomeKind.SENT


def test_network_errors_mark_the_modem_down_and_registration_brings_it_back(modem_factory):
    emu, ch, _ = modem_factory(Profile(registration=2), poll_interval=0.3)
    emu.fail_next_sends(331, 332)
    assert ch.send(deliver("een", 1)).kind is OutcomeKind.RETRY
    out = ch.send(deliver("twee", 2))
    assert out.kind is OutcomeKind.DEVICE_DOWN and "network" in out.detail
    h = ch.health()
    assert h.state is DeviceState.DOWN and h.last_error.startswith("no network") and "CS (+CREG)" in h.last_error
    emu.set_registration(cs=1, ps=1, eps=1)
    wait_for(lambda: ch.health().state is DeviceState.UP, 15, "up on new registration evidence")
    assert ch.send(deliver("drie", 3)).kind is OutcomeKind.SENT


def test_network_down_comes_back_after_the_hold_off_without_new_evidence(modem_factory):
    emu = modem_factory.emulator(LTE_ONLY)
    ch, _ = modem_factory.channel(modem_config(emu.port), poll_interval=0.3, network_hold=0.5)
    emu.fail_next_sends(38, 38)
    ch.send(deliver("een", 1))
    assert ch.send(deliver("twee", 2)).kind is OutcomeKind.DEVICE_DOWN
    wait_for(lambda: ch.health().state is DeviceState.UP, 15, "tried again after the hold-off")
    assert ch.send(deliver("drie", 3)).kind is OutcomeKind.SENT


def test_bare_errors_while_not_registered_count_as_network_trouble(modem_factory):
    emu, ch, _ = modem_factory(Profile(registration=0, refuse=("+CMEE",)))
    emu.fail_next_sends(0, 0)                    # plain ERROR: no +CMEE, so no reason given
    assert [ch.send(deliver("x", i)).kind for i in range(2)] == [OutcomeKind.RETRY, OutcomeKind.DEVICE_DOWN]
    assert ch.health().last_error.startswith("no network")


def test_bare_errors_while_registered_are_not_network_trouble(modem_factory):
    emu, ch, _ = modem_factory(Profile(refuse=("+CMEE",)))
    emu.fail_next_sends(0, 0, 0)
    assert {ch.send(deliver("x", i)).kind for i in range(3)} == {OutcomeKind.RETRY}
    assert ch.health().state is DeviceState.UP


def test_recipient_errors_do_not_count_as_network_trouble(modem_factory):
    emu, ch, _ = modem_factory(Profile(registration=0))
    emu.fail_next_sends(331, 28, 331, 28)
    kinds = [ch.send(deliver("x", i)).kind for i in range(4)]
    assert kinds == [OutcomeKind.RETRY, OutcomeKind.FAILED, OutcomeKind.RETRY, OutcomeKind.FAILED]
    assert ch.health().state is DeviceState.UP


def test_doctor_on_an_lte_only_stick_says_registered_per_domain(modem_factory):
    emu = modem_factory.emulator(LTE_ONLY)
    [network] = [c for c in doctor(modem_config(emu.port)) if c.what.endswith("network")]
    assert network.ok and "LTE (+CEREG): registered, home network" in network.detail
