"""/healthz and /metrics: served without a login, nothing personal in them."""
from __future__ import annotations

from gatewayd.channels.base import DeviceHealth, DeviceState


def test_metrics_are_prometheus_text_without_login(client, world):
    world.record_device("sim1", "sms", "n", DeviceHealth(DeviceState.UP, signal=18))
    r = client.get("/metrics")
    assert r.status_code == 200 and r.mimetype == "text/plain"
    body = r.get_data(as_text=True)
    assert "gatewayd_" in body and "sim1" in body
    assert "+32" not in body                       # no phone numbers


def test_healthz_says_unhealthy_without_a_daemon(client):
    r = client.get("/healthz")
    assert r.status_code == 503 and r.is_json


def test_healthz_is_ok_with_a_device_up_and_a_fresh_heartbeat(client, world):
    world.record_device("sim1", "sms", "n", DeviceHealth(DeviceState.UP, signal=18))
    r = client.get("/healthz")
    assert r.status_code == 200, r.get_json()


def test_other_pages_still_need_a_login(client):
    assert client.get("/devices").status_code == 302
