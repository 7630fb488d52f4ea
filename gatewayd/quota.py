"""Per-SIM fair-use quotas (how long the devices need to reach everyone: gatewayd.capacity).

Belgian operators treat heavy use of a consumer SIM as fraud (published
fair-use rules: more than 350 texts a day or 10,000 a month; or 500 a day and
more than 250 distinct recipients a month) and block the SIM mid-alert. Each
modem may carry limits; a SIM at its limit stops taking work, so the others
carry it. Counts come from the messages table (device, sent_at, segments),
so they survive restarts; the tracker then counts in memory.
"""
from __future__ import annotations

import threading
import zoneinfo
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from .capacity import sms_devices
from .config import Config, HilinkConfig, ModemConfig
from .model import Alert, Category, Message
from .outcomes import ChannelKind

if TYPE_CHECKING:
    from .store import Store

__all__ = ["QuotaCheck", "QuotaLimits", "QuotaTracker", "check_alert", "sms_devices"]


@dataclass(frozen=True)
class QuotaLimits:
    per_day: int = 0              # segments a day; 0 = no limit
    per_month: int = 0
    recipients_per_month: int = 0

    @classmethod
    def of(cls, modem: ModemConfig | HilinkConfig) -> "QuotaLimits":
        return cls(modem.quota_per_day, modem.quota_per_month, modem.quota_recipients_per_month)

    @property
    def any(self) -> bool:
        return bool(self.per_day or self.per_month or self.recipients_per_month)


@dataclass
class SimUsage:
    day_key: str
    month_key: str
    day: int = 0
    month: int = 0
    recipients: set[str] = field(default_factory=set)


class QuotaTracker:
    """Counts what each limited SIM sent today and this month (local time)."""

    def __init__(self, store: Store, limits: dict[str, QuotaLimits], tz: str, urgent_may_exceed: bool = False,
                 node: str | None = None):
        self.store = store
        self.node = node          # the node whose SIMs these are: other nodes may name theirs alike
        self.limits = {name: lim for name, lim in limits.items() if lim.any}
        self.tz = zoneinfo.ZoneInfo(tz)
        self.urgent_may_exceed = urgent_may_exceed
        self._usage: dict[str, SimUsage] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, store: Store, cfg: Config, node: str | None = None) -> "QuotaTracker":
        return cls(store, {m.name: QuotaLimits.of(m) for m in cfg.sims}, cfg.dispatch.timezone,
                   cfg.dispatch.urgent_may_exceed_quota, node)

    def _keys(self, now: datetime) -> tuple[str, str, datetime, datetime]:
        local = now.astimezone(self.tz)
        day_start = local.replace(hour=0, minute=0, second=0, microsecond=0)
        return local.strftime("%Y-%m-%d"), local.strftime("%Y-%m"), day_start, day_start.replace(day=1)

    def usage(self, device: str, now: datetime) -> SimUsage:
        """This SIM's counts, loaded from the database when the day or month turned."""
        day_key, month_key, day_start, month_start = self._keys(now)
        with self._lock:
            u = self._usage.get(device)
            if u is None or u.day_key != day_key:
                u = self._load(device, day_key, month_key, day_start, month_start)
                self._usage[device] = u
            return u

    def _load(self, device: str, day_key: str, month_key: str, day_start: datetime,
              month_start: datetime) -> SimUsage:
        # Drill messages never left the box: they do not count against the SIM.
        not_drill = Message.alert_id.is_(None) | Message.alert_id.in_(select(Alert.id).where(Alert.drill.is_(False)))
        sent = ((Message.device == device) & (Message.channel == ChannelKind.SMS.value)
                & Message.sent_at.is_not(None) & not_drill)
        if self.node is not None:
            sent = sent & (Message.node == self.node)
        with self.store.connection() as c:
            day = c.scalar(select(func.coalesce(func.sum(Message.segments), 0))
                           .where(sent, Message.sent_at >= day_start))
            month = c.scalar(select(func.coalesce(func.sum(Message.segments), 0))
                             .where(sent, Message.sent_at >= month_start))
            numbers = set(c.scalars(select(Message.number).distinct().where(sent, Message.sent_at >= month_start)))
        return SimUsage(day_key, month_key, int(day or 0), int(month or 0), numbers)

    def allows(self, device: str, now: datetime) -> bool:
        """May DEVICE take one more ordinary message now?"""
        lim = self.limits.get(device)
        if lim is None:
            return True
        return self.remaining(device, now) > 0 and not self._recipients_full(device, now)

    def _recipients_full(self, device: str, now: datetime) -> bool:
        lim = self.limits[device]
        return bool(lim.recipients_per_month) and len(self.usage(device, now).recipients) >= lim.recipients_per_month

    def remaining(self, device: str, now: datetime) -> float:
        """Segments DEVICE may still send today (inf when unlimited)."""
        lim = self.limits.get(device)
        if lim is None:
            return float("inf")
        if self._recipients_full(device, now):
            return 0.0
        u = self.usage(device, now)
        left = [float("inf")]
        if lim.per_day:
            left.append(lim.per_day - u.day)
        if lim.per_month:
            left.append(lim.per_month - u.month)
        return max(0.0, min(left))

    def record(self, device: str, number: str, segments: int, now: datetime) -> None:
        if device not in self.limits:
            return
        u = self.usage(device, now)
        with self._lock:
            u.day += max(1, segments)
            u.month += max(1, segments)
            u.recipients.add(number)

    def snapshot(self, device: str, now: datetime) -> dict[str, Any]:
        """Counters for status and the devices page."""
        lim = self.limits.get(device)
        if lim is None:
            return {}
        u = self.usage(device, now)
        return {"day": u.day, "day_limit": lim.per_day, "month": u.month, "month_limit": lim.per_month,
                "recipients_month": len(u.recipients), "recipients_limit": lim.recipients_per_month,
                "exhausted": not self.allows(device, now)}

    def total_remaining(self, devices: list[str], now: datetime) -> float:
        return sum(self.remaining(d, now) for d in devices)


@dataclass(frozen=True)
class QuotaCheck:
    needed: int
    remaining: float
    fits: bool
    sends_anyway: bool      # urgent and urgent_may_exceed_quota

    def message(self) -> str:
        if self.fits:
            return ""
        left = "unlimited" if self.remaining == float("inf") else int(self.remaining)
        tail = ("it is urgent and urgent_may_exceed_quota is set: it goes out anyway"
                if self.sends_anyway else "the rest waits until the quotas allow it, or expires")
        return f"the SIMs' fair-use quotas allow {left} more SMS today, this alert needs {self.needed}: {tail}"


def check_alert(tracker: QuotaTracker, cfg: Config, sms_segments: int, category: str,
                now: datetime) -> QuotaCheck:
    """Can the SIMs' remaining quotas carry SMS_SEGMENTS more? (For the preview and the status page.)"""
    names = [n for n, _ in sms_devices(cfg)]
    remaining = sum(tracker.remaining(n, now) for n in names)
    fits = sms_segments <= remaining
    return QuotaCheck(sms_segments, remaining, fits, (not fits) and category == Category.URGENT
                      and tracker.urgent_may_exceed)
