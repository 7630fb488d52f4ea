"""The modem channel when things go wrong: +CMS ERROR codes, USB unplug and return,
a modem that stops answering, SIM PIN trouble, signal and registration."""
from __future__ import annotations

import time

import pytest

from gatewayd.channels.base import ChannelError, Delivery, DeviceEvent, DeviceState, OutcomeKind
from tests.fixtures.modem import Profile, modem_config, modem_factory, wait_for  # noqa: F401

pytestmark = pytest.mark.timeout(90)

NUMBER = "+32470123456"


def deliver(text: str = "Inbraak gemeld", mid: int = 1) -> Delivery:
    return Delivery(message_id=mid, number=NUMBER, text=text)


def is_state(state):
    return lambda e: e.health.state is state


# ---------------------------------------------------------------- +CMS ERROR

@pytest.mark.parametrize("code", [38, 41, 42, 47, 331, 332])
def test_temporary_network_error_is_a_retry(modem_factory, code):
    emu, ch, _ = modem_factory()
    emu.fail_next_sends(code)
    out = ch.send(deliver())
    assert out.kind is OutcomeKind.RETRY and str(code) in out.detail


@pytest.mark.parametrize("code", [1, 21, 28, 96])
def test_permanent_recipient_error_is_a_failure(modem_factory, code):
    emu, ch, _ = modem_factory()
    emu.fail_next_sends(code)
    out = ch.send(deliver())
    assert out.kind is OutcomeKind.FAILED and str(code) in out.detail


@pytest.mark.parametrize("code", [310, 313, 322])
def test_device_error_reports_device_down(modem_factory, code):
    emu, ch, _ = modem_factory()
    emu.fail_next_sends(code)
    out = ch.send(deliver())
    assert out.kind is OutcomeKind.DEVICE_DOWN and not out.maybe_sent


def test_device_error_recovers_by_itself(modem_factory):
    emu, ch, sink = modem_factory()
    emu.fail_next_sends(313)
    ch.send(deliver())
    wait_for(lambda: ch.health().state is DeviceState.UP and sink.of(DeviceEvent)[-1].health.state is DeviceState.UP
             and len(sink.of(DeviceEvent)) >= 3, 15, "modem back up")
    assert ch.send(deliver(mid=2)).kind is OutcomeKind.SENT


def test_plain_error_without_a_code_is_a_retry(modem_factory):
    emu, ch, _ = modem_factory()
    emu.fail_next_sends(0)
    assert ch.send(deliver()).kind is OutcomeKind.RETRY


def test_error_on_second_part_says_how_far_it_got(modem_factory):
    emu, ch, _ = modem_factory()
    emu.fail_next_sends(None, 42)
    out = ch.send(deliver("b" * 200))
    assert out.kind is OutcomeKind.RETRY and "after 1 of 2 parts" in out.detail


# ---------------------------------------------------------------- USB unplug and return

def test_unplug_marks_the_device_down(modem_factory):
    emu, ch, sink = modem_factory()
    emu.unplug()
    sink.wait(DeviceEvent, 10, is_state(DeviceState.DOWN))
    assert ch.health().state is DeviceState.DOWN and "vanished" in ch.health().last_error


def test_send_while_unplugged_is_device_down_not_sent(modem_factory):
    emu, ch, sink = modem_factory()
    emu.unplug()
    sink.wait(DeviceEvent, 10, is_state(DeviceState.DOWN))
    out = ch.send(deliver())
    assert out.kind is OutcomeKind.DEVICE_DOWN and not out.maybe_sent


def test_unplugged_modem_comes_back_by_itself(modem_factory):
    emu, ch, sink = modem_factory()
    emu.unplug()
    sink.wait(DeviceEvent, 10, is_state(DeviceState.DOWN))
    emu.replug()
    wait_for(lambda: ch.health().state is DeviceState.UP, 20, "modem up again")
    assert ch.send(deliver()).kind is OutcomeKind.SENT and len(emu.sent) == 1


def test_unplug_mid_send_is_device_down_maybe_sent(modem_factory):
    emu, ch, _ = modem_factory()
    emu.unplug_during_next_send(replug_after=None)
    out = ch.send(deliver())
    assert (out.kind, out.maybe_sent) == (OutcomeKind.DEVICE_DOWN, True) and len(emu.sent) == 1


def test_unplug_mid_send_then_return_sends_nothing_twice_by_itself(modem_factory):
    emu, ch, _ = modem_factory()
    emu.unplug_during_next_send(replug_after=0.5)
    ch.send(deliver(mid=1))
    wait_for(lambda: ch.health().state is DeviceState.UP, 20, "modem up again")
    ch.send(deliver("volgende", mid=2))
    assert [t for _, t in emu.messages()] == ["Inbraak gemeld", "volgende"]


def test_port_missing_at_start_says_what_to_check(modem_factory, tmp_path):
    ch, sink = modem_factory.channel(modem_config(str(tmp_path / "nomodem")), open_it=False)
    with pytest.raises(ChannelError, match="does not exist: is the modem plugged in"):
        ch.open(sink)


def test_modem_plugged_in_after_start_comes_up(modem_factory, tmp_path):
    port = str(tmp_path / "modem0")
    ch, sink = modem_factory.channel(modem_config(port), open_it=False)
    with pytest.raises(ChannelError):
        ch.open(sink)
    emu = modem_factory.emulator()
    assert emu.port == port
    wait_for(lambda: ch.health().state is DeviceState.UP, 40, "modem up after plug-in")


# ---------------------------------------------------------------- a modem that stops answering

def test_hung_modem_is_reported_down_quickly(modem_factory):
    emu, ch, _ = modem_factory(command_timeout=1.0, send_timeout=2.0)
    emu.freeze(60, reset_clears=True)
    started = time.monotonic()
    out = ch.send(deliver())
    assert out.kind is OutcomeKind.DEVICE_DOWN and time.monotonic() - started < 10


def test_hung_modem_is_reset_and_comes_back(modem_factory):
    emu, ch, _ = modem_factory(command_timeout=1.0, send_timeout=2.0)
    emu.freeze(60, reset_clears=True)
    ch.send(deliver())
    wait_for(lambda: ch.health().state is DeviceState.UP, 30, "modem up after reset")
    assert "AT+CFUN=1,1" in [c.upper() for c in emu.commands]
    assert ch.send(deliver(mid=2)).kind is OutcomeKind.SENT


# ---------------------------------------------------------------- SIM and PIN

def test_pin_from_config_unlocks_the_sim(modem_factory):
    emu, ch, _ = modem_factory(Profile(pin="4321"), pin="4321")
    assert ch.health().state is DeviceState.UP and "AT+CPIN=4321" in emu.commands


def test_wrong_pin_is_reported_plainly(modem_factory):
    emu = modem_factory.emulator(Profile(pin="4321"))
    ch, sink = modem_factory.channel(modem_config(emu.port, pin="1111"), open_it=False)
    with pytest.raises(ChannelError, match="rejected the configured PIN"):
        ch.open(sink)
    assert ch.health().state is DeviceState.DOWN and "not retried" in ch.health().last_error


def test_wrong_pin_is_never_tried_twice(modem_factory):
    emu = modem_factory.emulator(Profile(pin="4321"))
    ch, sink = modem_factory.channel(modem_config(emu.port, pin="1111"), open_it=False)
    with pytest.raises(ChannelError):
        ch.open(sink)
    for _ in range(3):                       # the dispatcher retries open(); the PIN is not re-sent
        with pytest.raises(ChannelError):
            ch.open(sink)
    time.sleep(3)
    assert [c for c in emu.commands if c.upper().startswith("AT+CPIN=")] == ["AT+CPIN=1111"]


def test_missing_pin_says_to_set_one(modem_factory):
    emu = modem_factory.emulator(Profile(pin="4321"))
    ch, sink = modem_factory.channel(modem_config(emu.port), open_it=False)
    with pytest.raises(ChannelError, match="needs a PIN"):
        ch.open(sink)


def test_missing_sim_is_reported(modem_factory):
    emu = modem_factory.emulator(Profile(sim_inserted=False))
    ch, sink = modem_factory.channel(modem_config(emu.port), open_it=False)
    with pytest.raises(ChannelError, match="SIM"):
        ch.open(sink)


# ---------------------------------------------------------------- signal and registration

# Registration itself (denied, searching, LTE-only, unclear) never keeps a modem down:
# see test_modem_registration.py, where network errors on sends do.

def test_signal_is_polled(modem_factory):
    emu, ch, _ = modem_factory(poll_interval=0.3)
    emu.set_signal(9)
    wait_for(lambda: ch.health().signal == 9, 10, "signal 9 reported")


def test_losing_the_network_is_shown_and_sends_decide(modem_factory):
    emu, ch, sink = modem_factory(poll_interval=0.3)
    emu.set_signal(0, registration=2)
    wait_for(lambda: ch.health().registered is False, 10, "registration lost shown")
    assert ch.health().state is DeviceState.UP
    emu.fail_next_sends(331, 331)
    ch.send(deliver())
    ch.send(deliver(mid=2))
    sink.wait(DeviceEvent, 10, is_state(DeviceState.DOWN))
    emu.set_signal(20, registration=1)
    wait_for(lambda: ch.health().state is DeviceState.UP, 30, "back on the network")


def test_modem_that_ignores_the_reset_comes_back_when_it_answers_again(modem_factory):
    emu, ch, sink = modem_factory(command_timeout=0.5, send_timeout=1.0)
    emu.freeze(4, reset_clears=False)
    assert ch.send(deliver()).kind is OutcomeKind.DEVICE_DOWN
    wait_for(lambda: ch.health().state is DeviceState.UP, 60, "modem up after it thawed")
    assert ch.send(deliver(mid=2)).kind is OutcomeKind.SENT


def test_idle_modem_that_hangs_is_found_by_the_poll_and_reset(modem_factory):
    emu, ch, sink = modem_factory(command_timeout=0.5, poll_interval=0.3)
    emu.freeze(60, reset_clears=True)
    sink.wait(DeviceEvent, 20, is_state(DeviceState.DOWN))
    wait_for(lambda: ch.health().state is DeviceState.UP, 30, "modem up after reset")
    assert "AT+CFUN=1,1" in [c.upper() for c in emu.commands]


def test_rejected_pin_is_not_quoted_in_the_error(modem_factory):
    emu = modem_factory.emulator(Profile(pin="4321"))
    ch, sink = modem_factory.channel(modem_config(emu.port, pin="1111"), open_it=False)
    with pytest.raises(ChannelError) as exc:
        ch.open(sink)
    assert "1111" not in str(exc.value) and "1111" not in ch.health().last_error
