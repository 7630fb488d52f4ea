"""The channel protocol: the only thing the dispatch loop knows about devices.

A channel is one physical sending device (a GSM modem, an Asterisk trunk) or an
emulation of one. It sends one `Delivery` at a time per worker and answers with
an `Outcome`; things that happen later (delivery reports, replies) go to the
`EventSink` given at `open()`. A channel knows nothing of SQL or the web.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

# The values a channel takes and gives live in gatewayd.outcomes (the store uses them too);
# re-exported here because every channel speaks them.
from ..outcomes import (
    CallbackItem,
    CallbackPlan,
    ChannelEvent,
    ChannelKind,
    Delivery,
    DeliveryReport,
    DeviceEvent,
    DeviceHealth,
    DeviceState,
    EventSink,
    InboundText,
    KeyPress,
    Outcome,
    OutcomeKind,
)

__all__ = ["CallDesk", "CallbackItem", "CallbackPlan", "Channel", "ChannelError", "ChannelEvent", "ChannelKind",
           "Check", "Delivery", "DeliveryReport", "DeviceEvent", "DeviceHealth", "DeviceState", "EventSink",
           "InboundText", "KeyPress", "Outcome", "OutcomeKind"]



class CallDesk(Protocol):
    """What a voice channel asks of the rest of gatewayd about calls and keys coming in.

    Both methods write before they return and raise when they could not: the
    caller is thanked (or told anything) only after the write.
    """

    def key_pressed(self, press: KeyPress) -> None:
        """Record a key press (1 = confirmed)."""

    def callback(self, device: str, number: str, at: datetime) -> CallbackPlan:
        """Record a call to the box from NUMBER and say what the caller may hear."""


class ChannelError(Exception):
    """A device could not be opened or used; the message says what to check."""


@runtime_checkable
class Channel(Protocol):
    """A sending device. `send` blocks; the dispatcher runs `capacity` workers."""

    name: str
    kind: ChannelKind
    rate_per_minute: float   # sustained sends per minute (token bucket refill)
    capacity: int            # concurrent sends (1 for a modem, max_calls for Asterisk)
    # Optional: the longest one send may take (a call rings, is answered, read twice); the
    # daemon waits this long for sends in flight when it stops. Default: dispatch.DEFAULT_SEND_SECONDS.
    # max_send_seconds: float

    def open(self, sink: EventSink) -> None:
        """Connect to the device; raise ChannelError saying what is wrong."""

    def send(self, delivery: Delivery) -> Outcome:
        """Send one message; never raise for recipient or device trouble."""

    def health(self) -> DeviceHealth:
        """Current state, cheap (no I/O on the caller's thread)."""

    def close(self) -> None:
        """Release the device; in-flight sends may finish first."""


@dataclass(frozen=True)
class Check:
    """One line of `gatewayd doctor`: what was checked, whether it is fine, what to do."""

    ok: bool
    what: str
    detail: str = ""
