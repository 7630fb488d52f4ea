"""Asterisk dies mid-campaign and comes back: no call is lost, none silently repeated.

One scenario per module (it takes a while): four calls in flight (two ringing,
two answered and mid-message) when Asterisk is killed; Asterisk is started
again; one more call is placed once the channel has reconnected on its own.
"""
from __future__ import annotations

import threading
import time

import pytest

from gatewayd.channels.base import Delivery, DeviceEvent, DeviceState, OutcomeKind
from gatewayd.channels.voice import VoiceChannel
from gatewayd.config import AsteriskConfig, TtsConfig
from tests.fixtures.asterisk import CONFIRM, NO_ANSWER, asterisk_rig, hold  # noqa: F401 (fixture)

pytestmark = [pytest.mark.asterisk, pytest.mark.timeout(180)]

LONG = "Dit is een lang bericht over een inbraak in de straat. " * 6


def wait_for(cond, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture(scope="module")
def scenario(asterisk_rig, tmp_path_factory):
    rig = asterisk_rig
    cfg = AsteriskConfig(host=rig.ami.host, port=rig.ami.port, username=rig.ami.username, secret=rig.ami.secret,
                         channel="Local/{number}@bin-test", context="bin-alert", max_calls=4, ring_timeout=30.0,
                         audio_listen="127.0.0.1:0", confirm_wait=1.0)
    tts = TtsConfig(cache_dir=str(tmp_path_factory.mktemp("audio")), header_nl="Test.")
    events: list[DeviceEvent] = []
    ch = VoiceChannel(cfg, tts)
    ch.open(events.append)
    outcomes: dict[int, object] = {}
    numbers = {1: NO_ANSWER, 2: NO_ANSWER, 3: hold(90), 4: hold(90)}

    def one(mid: int, number: str):
        outcomes[mid] = ch.send(Delivery(mid, number, LONG))

    threads = [threading.Thread(target=one, args=item) for item in numbers.items()]
    for t in threads:
        t.start()
    try:
        assert wait_for(lambda: ch.originates == 4, 60), "the four calls were not placed"
        time.sleep(2.0)   # ringing / answered and playing the (long) message
        rig.kill()
        for t in threads:
            t.join(60)
        rig.start()
        back = wait_for(lambda: ch.health().state is DeviceState.UP, 60)
        after = ch.send(Delivery(5, CONFIRM, "Hallo.")) if back else None
        yield {"outcomes": outcomes, "events": events, "after": after, "channel": ch}
    finally:
        ch.close()
        rig.start()   # later tests need it whatever happened here


def test_every_call_in_flight_is_resolved(scenario):
    assert sorted(scenario["outcomes"]) == [1, 2, 3, 4]


def test_calls_in_flight_end_device_down(scenario):
    assert {o.kind for o in scenario["outcomes"].values()} == {OutcomeKind.DEVICE_DOWN}


def test_calls_in_flight_are_flagged_maybe_sent(scenario):
    assert all(o.maybe_sent for o in scenario["outcomes"].values())


def test_sink_hears_the_device_go_down(scenario):
    assert any(e.health.state is DeviceState.DOWN for e in scenario["events"])


def test_sink_hears_the_device_come_back(scenario):
    states = [e.health.state for e in scenario["events"]]
    assert DeviceState.DOWN in states and DeviceState.UP in states[states.index(DeviceState.DOWN):]


def test_channel_reconnects_and_calls_again(scenario):
    assert scenario["after"] is not None and scenario["after"].kind is OutcomeKind.ACKNOWLEDGED


def test_nothing_left_in_flight(scenario):
    assert scenario["channel"].health().detail["calls_in_flight"] == 0
