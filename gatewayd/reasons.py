"""The fixed reasons the store writes in Message.reason when it ends a message itself.

Kept here as constants so the status page can word them in the reader's language (web/labels.py);
the CLI, the API and the logs show them as written. A device's own error text is no constant: it is
shown as the device said it."""
from __future__ import annotations

CANCELLED_BY = "cancelled by "          # + who cancelled the alert
SUPERSEDED = "superseded by a correction before it was sent"
WITHDRAWN_IN_FLIGHT = "alert cancelled or corrected while this message was in flight"
EXPIRED = "alert expired before this message could be sent"
MEMBER_STOPPED = "the member replied STOP"
MEMBER_ERASED = "member erased"
ERASED = "erased"
CONFIRMED_ON_CALLBACK = "confirmed by the member on the callback line"


def cancelled_by(actor: str) -> str:
    return f"{CANCELLED_BY}{actor}".strip()
