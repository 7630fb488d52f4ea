"""capacity.py: how fast the configured devices send, and the one "time to reach everyone" estimate."""
from __future__ import annotations

import pytest

from gatewayd.capacity import TYPICAL_CALL_SECONDS, Capacity, capacity, configured_seconds, seconds_to_reach
from gatewayd.config import parse_config

TWO_SIMS_AND_A_PBX = {
    "modems": [{"name": "modem1", "port": "/dev/ttyUSB0", "sms_per_minute": 20}],
    "hilink": [{"name": "dongle1", "sms_per_minute": 30}],
    "asterisk": {"secret": "s", "max_calls": 4, "calls_per_minute": 60},
}


# ---------------------------------------------------------------- what the devices can do
def test_sms_devices_add_up_and_calls_are_counted_apart():
    cap = capacity(parse_config(TWO_SIMS_AND_A_PBX))
    assert cap.sms_per_minute == 50.0
    # Four lines, a call taking TYPICAL_CALL_SECONDS each: fewer than the 60 a minute the rate allows.
    assert cap.calls_per_minute == pytest.approx(4 * 60 / TYPICAL_CALL_SECONDS)
    assert cap.devices == ["modem1", "dongle1", "asterisk"]


def test_asterisk_is_held_to_its_rate_when_that_is_lower_than_its_lines_allow():
    cap = capacity(parse_config({"asterisk": {"secret": "s", "max_calls": 30, "calls_per_minute": 12}}))
    assert (cap.sms_per_minute, cap.calls_per_minute) == (0.0, 12.0)


def test_an_emulated_device_sends_at_its_rate_or_as_fast_as_its_slots_finish():
    cfg = parse_config({"emulated": [
        {"name": "fast", "kind": "sms", "latency": 0.01, "rate_per_minute": 120, "capacity": 1},   # the rate binds
        {"name": "slow", "kind": "sms", "latency": 2.0, "rate_per_minute": 600, "capacity": 1},    # 30/min: latency
        {"name": "pbx", "kind": "voice", "latency": 3.0, "rate_per_minute": 600, "capacity": 2},   # 40/min: 2 slots
    ]})
    cap = capacity(cfg)
    assert cap.sms_per_minute == pytest.approx(150.0)
    assert cap.calls_per_minute == pytest.approx(40.0)
    assert cap.devices == ["fast", "slow", "pbx"]


def test_devices_that_are_down_are_left_out():
    cap = capacity(parse_config(TWO_SIMS_AND_A_PBX), down={"dongle1", "asterisk"})
    assert (cap.sms_per_minute, cap.calls_per_minute, cap.devices) == (20.0, 0.0, ["modem1"])


def test_no_device_configured_is_no_capacity():
    assert capacity(parse_config({})) == Capacity(0.0, 0.0, [])


# ---------------------------------------------------------------- time to reach everyone
def test_time_counts_sms_parts_not_recipients():
    cap = Capacity(sms_per_minute=20.0)
    assert seconds_to_reach(20, 0, cap) == 60.0
    assert seconds_to_reach(40, 0, cap) == 120.0          # the same 20 recipients, a text of two parts each


def test_sms_and_calls_go_out_in_parallel_the_slower_decides():
    cap = Capacity(sms_per_minute=60.0, calls_per_minute=6.0)
    assert seconds_to_reach(60, 3, cap) == 60.0            # SMS: 60 s; calls: 30 s
    assert seconds_to_reach(30, 12, cap) == 120.0          # SMS: 30 s; calls: 120 s


def test_several_devices_share_the_work():
    one = capacity(parse_config({"modems": [{"name": "m1", "port": "/dev/ttyUSB0", "sms_per_minute": 20}]}))
    three = capacity(parse_config({"modems": [{"name": f"m{i}", "port": f"/dev/ttyUSB{i}", "sms_per_minute": 20}
                                              for i in range(3)]}))
    assert seconds_to_reach(120, 0, one) == 360.0
    assert seconds_to_reach(120, 0, three) == 120.0


def test_estimate_counts_queued_work_ahead():
    cap = Capacity(sms_per_minute=20.0)
    assert seconds_to_reach(10, 0, cap, {"sms": 10}) == 60.0


def test_work_ahead_on_the_other_channel_does_not_delay():
    assert seconds_to_reach(10, 0, Capacity(sms_per_minute=20.0, calls_per_minute=1.0), {"voice": 500}) == 30.0


def test_estimate_is_unknown_without_a_voice_device():
    assert seconds_to_reach(0, 3, Capacity(sms_per_minute=20.0), {}) is None


def test_with_no_device_anything_to_send_is_unknown_and_nothing_to_send_takes_no_time():
    none = Capacity()
    assert seconds_to_reach(1, 0, none) is None
    assert seconds_to_reach(0, 1, none) is None
    assert seconds_to_reach(0, 0, none, {"sms": 5, "voice": 5}) == 0.0


# ---------------------------------------------------------------- a report's estimate: the configured devices
def test_configured_seconds_is_the_estimate_over_every_configured_device():
    cfg = parse_config(TWO_SIMS_AND_A_PBX)
    assert configured_seconds(cfg, 100, 0) == 120.0        # 100 parts at 50 a minute
    assert configured_seconds(cfg, 0, 16) == pytest.approx(16 / (4 * 60 / TYPICAL_CALL_SECONDS) * 60)


def test_configured_seconds_without_devices():
    cfg = parse_config({})
    assert configured_seconds(cfg, 10, 0) is None
    assert configured_seconds(cfg, 0, 0) == 0.0
