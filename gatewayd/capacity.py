"""How fast the configured devices can send, and so how long reaching everyone takes.

One estimate, pure arithmetic over the config, no I/O: `seconds_to_reach` over a
`capacity`. The page's preview asks it live (Store.estimate: devices that are down left
out, what waits ahead counted); a report of what was sent (`gatewayd alert report`, the
drill report) asks it of the configured devices (`configured_seconds`).
"""
from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from .config import Config
from .outcomes import ChannelKind

# A voice call: ringing, the header, the message twice, the confirmation prompt. Only used to
# estimate how long calls take, never to schedule them.
TYPICAL_CALL_SECONDS = 45.0


@dataclass
class Capacity:
    sms_per_minute: float = 0.0
    calls_per_minute: float = 0.0
    devices: list[str] = field(default_factory=list)


def sms_devices(cfg: Config) -> list[tuple[str, float]]:
    """(name, sends per second) of every SMS device configured."""
    out = [(m.name, m.sms_per_minute / 60.0) for m in cfg.sims]
    out += [(e.name, _emulated_per_second(e.rate_per_minute, e.capacity, e.latency))
            for e in cfg.emulated if e.kind == ChannelKind.SMS]
    return out


def _emulated_per_second(rate_per_minute: float, slots: int, latency: float) -> float:
    """An emulated device sends at its rate limit, or as fast as its slots finish sends of LATENCY."""
    return min(rate_per_minute / 60.0, slots / max(latency, 1e-3))


def capacity(cfg: Config, down: Collection[str] = ()) -> Capacity:
    """Messages per minute the configured devices can send, leaving out the devices in DOWN."""
    cap = Capacity()
    for name, per_second in sms_devices(cfg):
        if name not in down:
            cap.sms_per_minute += per_second * 60.0
            cap.devices.append(name)
    for e in cfg.emulated:
        if e.kind == ChannelKind.VOICE and e.name not in down:
            cap.calls_per_minute += _emulated_per_second(e.rate_per_minute, e.capacity, e.latency) * 60.0
            cap.devices.append(e.name)
    a = cfg.asterisk
    if a is not None and "asterisk" not in down:
        cap.calls_per_minute += min(a.calls_per_minute, a.max_calls * 60.0 / TYPICAL_CALL_SECONDS)
        cap.devices.append("asterisk")
    return cap


def configured_seconds(cfg: Config, sms_parts: int, calls: int) -> float | None:
    """What the configured devices need for SMS_PARTS segments and CALLS calls, whatever state they
    are in now: a report's "time the configured devices would need" (None: a needed channel has none)."""
    return seconds_to_reach(sms_parts, calls, capacity(cfg))


def seconds_to_reach(sms_parts: int, calls: int, cap: Capacity,
                     queued_ahead: Mapping[str, int] | None = None) -> float | None:
    """Seconds until the last recipient is reached, or None when a needed channel has no device.

    SMS and calls go out in parallel; messages of equal or higher priority already
    queued (QUEUED_AHEAD, per channel) go first.
    """
    ahead = queued_ahead or {}
    times = []
    for need, waiting, rate in ((sms_parts, ahead.get(ChannelKind.SMS.value, 0), cap.sms_per_minute),
                                (calls, ahead.get(ChannelKind.VOICE.value, 0), cap.calls_per_minute)):
        if need <= 0:
            continue
        if rate <= 0:
            return None
        times.append((need + waiting) / rate * 60.0)
    return max(times, default=0.0)
