"""Devices and settings: each device's last known state and counters, and small stored settings.

The daemon writes what its devices report (`record_device`); the CLI's status,
the page and /metrics read it back.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select

from ..model import Device, Setting, utcnow
from ..outcomes import DeviceHealth
from .base import StoreBase


class DeviceStore(StoreBase):
    """Device state and settings."""

    def forget_devices(self, node: str, keep: set[str]) -> list[str]:
        """Delete NODE's device records other than KEEP (devices taken out of its config);
        other nodes' devices are theirs to keep. Returns the names forgotten."""
        with self.session.begin() as s:
            gone = list(s.scalars(select(Device.name).where(Device.node == node, Device.name.not_in(keep))))
            if gone:
                s.execute(delete(Device).where(Device.node == node, Device.name.in_(gone)))
        return gone

    def record_device(self, name: str, kind: str, node: str, health: DeviceHealth,
                      sent: int = 0, failed: int = 0) -> None:
        """Upsert a device's last known state and add to its counters."""
        now = utcnow()
        with self.session.begin() as s:
            dev = s.get(Device, (node, name)) or Device(node=node, name=name, kind=kind, sent_count=0,
                                                        failed_count=0)
            dev.kind, dev.state = kind, health.state.value
            dev.signal, dev.registered = health.signal, health.registered
            dev.last_error, dev.detail, dev.updated_at = health.last_error, dict(health.detail), now
            dev.sent_count = (dev.sent_count or 0) + sent
            dev.failed_count = (dev.failed_count or 0) + failed
            s.add(dev)

    def devices(self) -> list[dict[str, Any]]:
        with self.engine.connect() as c:
            rows = c.execute(select(Device).order_by(Device.node, Device.name)).mappings().all()
        out = []
        for r in rows:
            d = dict(r)
            d["updated_at"] = d["updated_at"].isoformat() if d["updated_at"] else None
            out.append(d)
        return out

    def get_setting(self, key: str) -> dict[str, Any]:
        with self.session() as s:
            row = s.get(Setting, key)
            return dict(row.value) if row is not None and isinstance(row.value, dict) else {}

    def put_setting(self, key: str, value: dict[str, Any]) -> None:
        with self.session.begin() as s:
            row = s.get(Setting, key)
            if row is None:
                s.add(Setting(key=key, value=value))
            else:
                row.value = value

