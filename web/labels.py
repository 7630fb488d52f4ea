"""Translated labels for stored codes (states, categories, channels, languages).

Lazy strings defined once: a table of 500 recipients translates one label per
cell instead of building a dict of every label per cell.
"""
from __future__ import annotations

from flask_babel import lazy_gettext as _l

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
NODE_STATES = {NodeState.RUNNING.value: _l("running"), NodeState.SILENT.value: _l("silent (no heartbeat)"),
               NodeState.STOPPED.value: _l("stopped"), NodeState.NEVER_RAN.value: _l("never started"),
               NodeState.UNKNOWN.value: _l("unknown")}


def template_globals() -> dict:
    return {"STATE_LABELS": STATES, "CATEGORY_LABELS": CATEGORIES, "CHANNEL_LABELS": CHANNELS,
            "LANGUAGE_LABELS": LANGUAGE_NAMES, "DEVICE_STATE_LABELS": DEVICE_STATES,
            "NODE_STATE_LABELS": NODE_STATES}
