"""Prometheus /metrics and /healthz, built from the database the daemon writes.

Both read only `Store.queue_depth()` and `Store.devices()`, so the web process
serves them (it shares the database) and they stay true when the daemon is
dead: a stale device record then says so. Mount them in web/:

    from gatewayd.metrics import CONTENT_TYPE, healthz, render_metrics
    GET /metrics -> Response(render_metrics(store), mimetype=CONTENT_TYPE)
    GET /healthz -> ok, body = healthz(store); jsonify(body), 200 if ok else 503
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from .outcomes import ChannelKind, DeviceState
from .store import Store
from .vocabulary import Category

CONTENT_TYPE = CONTENT_TYPE_LATEST
CATEGORIES = tuple(c.value for c in Category)
CHANNELS = tuple(c.value for c in ChannelKind)
STATES = tuple(s.value for s in DeviceState)
# The daemon writes every device's state every 2 s; much older means it is not running.
DAEMON_STALE_AFTER = 30.0


def _age(iso: str | None, now: datetime) -> float | None:
    """Seconds since the ISO timestamp ISO, or None when there is none."""
    if not iso:
        return None
    then = datetime.fromisoformat(iso)
    if then.tzinfo is None:
        then = then.replace(tzinfo=timezone.utc)
    return max(0.0, (now - then).total_seconds())


class StoreCollector:
    """A prometheus_client collector reading the queue and devices at scrape time."""

    def __init__(self, store: Store, now: datetime | None = None):
        self.store = store
        self.now = now

    def collect(self) -> Iterator[Metric]:
        now = self.now or datetime.now(timezone.utc)
        yield from self._queue(self.store.queue_depth(now))
        yield from self._devices(self.store.devices(), now)

    def _queue(self, q: dict[str, Any]) -> Iterator[Metric]:
        depth = GaugeMetricFamily("gatewayd_queue_depth", "Messages waiting to be sent (queued or retrying)",
                                  labels=["priority", "channel"])
        by_cat = q.get("by_category", {})
        for cat in CATEGORIES:
            for ch in CHANNELS:
                depth.add_metric([cat, ch], by_cat.get(cat, {}).get(ch, 0))
        yield depth
        yield GaugeMetricFamily("gatewayd_queue_sending", "Messages being sent right now", value=q["sending"])
        yield GaugeMetricFamily("gatewayd_queue_oldest_age_seconds",
                                "Age of the oldest waiting message (0 when none waits)",
                                value=q["oldest_queued_seconds"])

    def _devices(self, devices: list[dict[str, Any]], now: datetime) -> Iterator[Metric]:
        labels = ["device", "kind", "node"]     # node: several gateways may each have a `modem1`
        sent = CounterMetricFamily("gatewayd_device_sent", "Messages a device got out", labels=labels)
        failed = CounterMetricFamily("gatewayd_device_failed", "Send attempts a device did not get out",
                                     labels=labels)
        up = GaugeMetricFamily("gatewayd_device_up", "1 when the device is up", labels=labels)
        state = GaugeMetricFamily("gatewayd_device_state", "1 for the device's current state",
                                  labels=labels + ["state"])
        signal = GaugeMetricFamily("gatewayd_device_signal", "Signal quality, +CSQ 0-31 (99 unknown)",
                                   labels=labels)
        age = GaugeMetricFamily("gatewayd_device_report_age_seconds",
                                "Seconds since the daemon last wrote this device's state", labels=labels)
        voice_up = None
        for d in devices:
            lv = [d["name"], d["kind"], d["node"]]
            sent.add_metric(lv, d["sent_count"] or 0)
            failed.add_metric(lv, d["failed_count"] or 0)
            up.add_metric(lv, 1 if d["state"] == "up" else 0)
            for s in STATES:
                state.add_metric(lv + [s], 1 if d["state"] == s else 0)
            if d["signal"] is not None:
                signal.add_metric(lv, d["signal"])
            a = _age(d["updated_at"], now)
            if a is not None:
                age.add_metric(lv, a)
            if d["kind"] == ChannelKind.VOICE:
                voice_up = bool(voice_up) or d["state"] == "up"
        yield from (sent, failed, up, state, signal, age)
        if voice_up is not None:
            yield GaugeMetricFamily("gatewayd_ami_connected", "1 when the Asterisk (AMI) voice line is up",
                                    value=1 if voice_up else 0)


def render_metrics(store: Store, now: datetime | None = None) -> bytes:
    """The Prometheus text exposition for /metrics (serve with CONTENT_TYPE)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(store, now))
    return generate_latest(registry)


def healthz(store: Store, now: datetime | None = None,
            stale_after: float = DAEMON_STALE_AFTER) -> tuple[bool, dict[str, Any]]:
    """(ok, report) for /healthz: the database answers, the daemon runs and a device is up.

    The report names each check and what is wrong; it holds no personal data.
    """
    now = now or datetime.now(timezone.utc)
    try:
        devices = store.devices()
        queue = store.queue_depth(now)
    except Exception as exc:   # /healthz must answer, whatever the database does
        return False, {"ok": False, "checks": {"database": f"error: {type(exc).__name__}"}}
    checks = {"database": "ok"}
    ages = [a for a in (_age(d["updated_at"], now) for d in devices) if a is not None]
    if not ages:
        checks["daemon"] = "never ran: no device has reported (start gatewayd run)"
    elif min(ages) > stale_after:
        checks["daemon"] = f"not running: last report {min(ages):.0f} s ago"
    else:
        checks["daemon"] = "ok"
    up = [d["name"] for d in devices if d["state"] == "up"]
    down = [d["name"] for d in devices if d["state"] != "up"]
    checks["devices"] = "ok" if up else "no device is up"
    ok = all(v == "ok" for v in checks.values())
    return ok, {"ok": ok, "checks": checks,
                "devices": {d["name"]: {"state": d["state"], "signal": d["signal"], "last_error": d["last_error"]}
                            for d in devices},
                "down": down,
                "queue": {"waiting": queue["queued"], "sending": queue["sending"],
                          "oldest_queued_seconds": queue["oldest_queued_seconds"]}}
