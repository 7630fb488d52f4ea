"""Translated labels for stored codes (states, categories, channels, languages).

Lazy strings defined once: a table of 500 recipients translates one label per
cell instead of building a dict of every label per cell.
"""
from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from gatewayd import reasons
from gatewayd.outcomes import DeviceState
from gatewayd.vocabulary import AlertChannel, Category, Language, MemberChannel, MessageState, NodeState

# Keyed by the values the database and the forms hold.
_S, _C = MessageState, Category
STATES = {_S.QUEUED.value: _l("queued"), _S.SENDING.value: _l("sending"), _S.SENT.value: _l("sent"),
          _S.DELIVERED.value: _l("delivered"), _S.ACKNOWLEDGED.value: _l("acknowledged"),
          _S.VOICEMAIL.value: _l("answering machine"), _S.RETRY.value: _l("retry"), _S.FAILED.value: _l("failed"),
          _S.EXPIRED.value: _l("expired"), _S.CANCELLED.value: _l("cancelled")}
CATEGORIES = {_C.URGENT.value: _l("Urgent"), _C.PREVENTION.value: _l("Prevention"), _C.FEEDBACK.value: _l("Feedback")}
CHANNELS = {AlertChannel.MEMBER.value: _l("as each member prefers"), MemberChannel.SMS.value: _l("SMS"),
            MemberChannel.VOICE.value: _l("voice call"), MemberChannel.SMS_VOICE.value: _l("SMS + voice call")}
LANGUAGE_NAMES = {Language.NL.value: _l("Dutch"), Language.FR.value: _l("French"), Language.DE.value: _l("German"),
                  Language.EN.value: _l("English")}
DEVICE_STATES = {DeviceState.UP.value: _l("working"), DeviceState.DOWN.value: _l("down"),
                 DeviceState.STARTING.value: _l("starting")}
# The reasons the store writes itself (gatewayd/reasons.py); a device's error text is shown as it came.
REASONS = {reasons.SUPERSEDED: _l("superseded by a correction before it was sent"),
           reasons.WITHDRAWN_IN_FLIGHT: _l("alert cancelled or corrected while this message was in flight"),
           reasons.EXPIRED: _l("alert expired before this message could be sent"),
           reasons.MEMBER_STOPPED: _l("the member replied STOP"), reasons.MEMBER_ERASED: _l("member erased"),
           reasons.ERASED: _l("erased"),
           reasons.CONFIRMED_ON_CALLBACK: _l("confirmed by the member on the callback line"),
           reasons.CANCELLED_BY.strip(): _l("cancelled")}
NODE_STATES = {NodeState.RUNNING.value: _l("running"), NodeState.SILENT.value: _l("silent (no heartbeat)"),
               NodeState.STOPPED.value: _l("stopped"), NodeState.NEVER_RAN.value: _l("never started"),
               NodeState.UNKNOWN.value: _l("unknown")}


def reason_label(reason: str | None) -> str:
    """A message's reason in the page language when the store wrote it, else as written."""
    reason = reason or ""
    if reason.startswith(reasons.CANCELLED_BY):
        return _("cancelled by %(who)s", who=reason[len(reasons.CANCELLED_BY):])
    return str(REASONS.get(reason, reason))


def template_globals() -> dict:
    return {"STATE_LABELS": STATES, "CATEGORY_LABELS": CATEGORIES, "CHANNEL_LABELS": CHANNELS,
            "LANGUAGE_LABELS": LANGUAGE_NAMES, "DEVICE_STATE_LABELS": DEVICE_STATES,
            "NODE_STATE_LABELS": NODE_STATES, "reason_label": reason_label}
