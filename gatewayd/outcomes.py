"""Values that pass between the store, the dispatcher and the channels.

Neutral ground: the store records them and the channels produce them, so
neither has to import the other. Plain frozen dataclasses and str enums, no I/O.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Union

from .vocabulary import Category


class ChannelKind(enum.StrEnum):
    SMS = "sms"
    VOICE = "voice"


class OutcomeKind(enum.StrEnum):
    """What one send attempt achieved, from the dispatcher's point of view."""

    SENT = "sent"                  # accepted by the network (SMS: +CMGS answered); a report may follow
    DELIVERED = "delivered"        # reached the person (voice: answered and the message played)
    ACKNOWLEDGED = "acknowledged"  # voice: delivered and the member pressed 1
    VOICEMAIL = "voicemail"        # voice: an answering machine took the call; a short message was left
    RETRY = "retry"                # transient for this recipient (busy, no answer, network congestion)
    FAILED = "failed"              # permanent for this recipient (invalid number, barred)
    DEVICE_DOWN = "device_down"    # the device failed, not the recipient: requeue for another device


@dataclass(frozen=True)
class Outcome:
    kind: OutcomeKind
    detail: str = ""
    # Network reference of an accepted SMS (TP-MR), for matching delivery reports.
    reference: int | None = None
    # True when the device may have transmitted although it reports failure
    # (e.g. the port vanished after the PDU was written): the message is flagged.
    maybe_sent: bool = False
    segments: int = 1
    # RETRY: the channel asks for the next try this many seconds from now instead of
    # the normal backoff (voice: one quick re-call after an unanswered first call).
    retry_after: float | None = None

    @classmethod
    def sent(cls, reference: int | None = None, segments: int = 1, detail: str = "") -> "Outcome":
        return cls(OutcomeKind.SENT, detail, reference=reference, segments=segments)

    @classmethod
    def retry(cls, detail: str, after: float | None = None) -> "Outcome":
        return cls(OutcomeKind.RETRY, detail, retry_after=after)

    @classmethod
    def failed(cls, detail: str) -> "Outcome":
        return cls(OutcomeKind.FAILED, detail)

    @classmethod
    def device_down(cls, detail: str, maybe_sent: bool = False) -> "Outcome":
        return cls(OutcomeKind.DEVICE_DOWN, detail, maybe_sent=maybe_sent)


@dataclass(frozen=True)
class Delivery:
    """One message to one recipient, as handed to a channel."""

    message_id: int
    number: str            # E.164, e.g. "+32470123456"
    text: str
    language: str = "nl"   # nl | fr | de | en
    category: str = Category.URGENT.value
    alert_id: int | None = None
    drill: bool = False    # drill: run everything but put nothing on the air
    attempt: int = 1       # 1 for the first try of this message, 2 for the next ...


class DeviceState(enum.StrEnum):
    STARTING = "starting"
    UP = "up"
    DOWN = "down"


@dataclass
class DeviceHealth:
    state: DeviceState = DeviceState.STARTING
    signal: int | None = None          # 0..31 (+CSQ) or None when unknown
    registered: bool | None = None
    last_error: str = ""
    detail: dict[str, Any] = field(default_factory=dict)   # manufacturer, model, operator, ...


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class DeliveryReport:
    """A network status report (SMS +CDS) about an earlier accepted message."""

    device: str
    reference: int
    number: str
    delivered: bool
    detail: str = ""
    permanent: bool = True     # False: the network is still trying (temporary status)
    at: datetime = field(default_factory=_now)


@dataclass(frozen=True)
class InboundText:
    """A text received by a device (an SMS reply from a member)."""

    device: str
    number: str
    text: str
    at: datetime = field(default_factory=_now)
    # Identifies this SMS if it is read twice (a crash between storing and deleting it):
    # stored once. "" = no key (every copy is stored).
    key: str = ""


@dataclass(frozen=True)
class DeviceEvent:
    """A device changed state (went down, came back, signal changed)."""

    device: str
    health: DeviceHealth


@dataclass(frozen=True)
class KeyPress:
    """A key a person pressed on a call: written (CallDesk.key_pressed) before it is thanked for."""

    device: str
    number: str
    digit: str
    message_id: int | None = None   # pressed during this alert call
    alert_id: int | None = None     # pressed on the callback line, about this alert
    at: datetime = field(default_factory=_now)


@dataclass(frozen=True)
class CallbackItem:
    """One alert read to a member who phoned the box."""

    alert_id: int
    text: str


@dataclass(frozen=True)
class CallbackPlan:
    """What a caller on the callback line hears: a member their alerts, anyone else a neutral sentence."""

    member: bool
    language: str
    items: tuple[CallbackItem, ...] = ()
    hours: float = 24.0


ChannelEvent = Union[DeliveryReport, InboundText, DeviceEvent]
# Write-ahead: for an InboundText or DeliveryReport the sink returns only once the event is
# committed to the database, and raises when it could not be; the device deletes the SMS
# from the SIM (or acknowledges it) only after the sink returned.
EventSink = Callable[[ChannelEvent], None]
