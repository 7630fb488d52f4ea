"""/metrics (Prometheus text) and /healthz, read from the database."""
from __future__ import annotations

from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine

from gatewayd.channels.base import DeviceHealth, DeviceState
from gatewayd.metrics import healthz, render_metrics
from gatewayd.model import utcnow
from gatewayd.store import AlertRequest, Store


@pytest.fixture
def store(any_store):
    """Every test here runs on SQLite and, under make test, on PostgreSQL."""
    return any_store


def _samples(store, now=None) -> dict[tuple, float]:
    text = render_metrics(store, now).decode()
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _up(store, name="modem1", kind="sms", signal=17, sent=0, failed=0, state=DeviceState.UP):
    store.record_device(name, kind, "node", DeviceHealth(state, signal=signal, registered=True), sent=sent,
                        failed=failed)


@pytest.fixture
def queued(store):
    store.add_network("N")
    for i in range(3):
        store.add_member("N", f"+32470{i:06d}", channel="sms+voice")
    store.enqueue_alert(AlertRequest(networks=("N",), category="prevention", text="x"))
    store.enqueue_alert(AlertRequest(networks=("N",), category="urgent", text="y", channel="sms"))
    return store


def test_queue_depth_per_priority_and_channel(queued):
    s = _samples(queued)
    assert s[("gatewayd_queue_depth", (("channel", "sms"), ("priority", "urgent")))] == 3
    assert s[("gatewayd_queue_depth", (("channel", "voice"), ("priority", "prevention")))] == 3
    assert s[("gatewayd_queue_depth", (("channel", "voice"), ("priority", "urgent")))] == 0


def test_oldest_queued_message_age(queued):
    s = _samples(queued, utcnow() + timedelta(minutes=10))
    assert 599 <= s[("gatewayd_queue_oldest_age_seconds", ())] <= 620


def test_sends_and_failures_per_device(store):
    _up(store, sent=5, failed=2)
    _up(store, sent=1)
    s = _samples(store)
    labels = (("device", "modem1"), ("kind", "sms"), ("node", "node"))
    assert s[("gatewayd_device_sent_total", labels)] == 6
    assert s[("gatewayd_device_failed_total", labels)] == 2


def test_signal_and_up_per_device(store):
    _up(store, signal=17)
    _up(store, name="modem2", signal=None, state=DeviceState.DOWN)
    s = _samples(store)
    assert s[("gatewayd_device_signal", (("device", "modem1"), ("kind", "sms"), ("node", "node")))] == 17
    assert ("gatewayd_device_signal", (("device", "modem2"), ("kind", "sms"), ("node", "node"))) not in s
    assert s[("gatewayd_device_up", (("device", "modem2"), ("kind", "sms"), ("node", "node")))] == 0


def test_two_gateways_devices_of_the_same_name_are_two_series(store):
    _up(store, sent=2)
    store.record_device("modem1", "sms", "other-node", DeviceHealth(DeviceState.DOWN), sent=7)
    s = _samples(store)
    assert s[("gatewayd_device_sent_total", (("device", "modem1"), ("kind", "sms"), ("node", "node")))] == 2
    assert s[("gatewayd_device_sent_total", (("device", "modem1"), ("kind", "sms"), ("node", "other-node")))] == 7


@pytest.mark.parametrize("state, expected", [(DeviceState.UP, 1), (DeviceState.DOWN, 0)])
def test_ami_connected_follows_the_voice_device(store, state, expected):
    _up(store, name="asterisk", kind="voice", signal=None, state=state)
    assert _samples(store)[("gatewayd_ami_connected", ())] == expected


def test_no_ami_metric_without_a_voice_device(store):
    _up(store)
    assert ("gatewayd_ami_connected", ()) not in _samples(store)


def test_healthz_ok_with_a_fresh_device_up(store):
    _up(store)
    ok, report = healthz(store)
    assert ok, report


def test_healthz_fails_when_the_daemon_stopped_reporting(store):
    _up(store)
    ok, report = healthz(store, utcnow() + timedelta(minutes=5))
    assert not ok and report["checks"]["daemon"].startswith("not running")


def test_healthz_fails_when_every_device_is_down(store):
    _up(store, state=DeviceState.DOWN)
    ok, report = healthz(store)
    assert not ok and report["down"] == ["modem1"]


def test_healthz_answers_when_the_database_does_not(tmp_path):
    broken = Store(create_engine(f"sqlite:///{tmp_path}/empty.db"))
    ok, report = healthz(broken)
    assert not ok and report["checks"]["database"].startswith("error")
