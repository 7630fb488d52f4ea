"""Translated labels for stored codes (states, categories, channels, languages).

Lazy strings defined once: a table of 500 recipients translates one label per
cell instead of building a dict of every label per cell.
"""
from __future__ import annotations

from flask_babel import lazy_gettext as _l

from gatewayd.channels.base import DeviceState

STATES = {"queued": _l("queued"), "sending": _l("sending"), "sent": _l("sent"), "delivered": _l("delivered"),
          "acknowledged": _l("acknowledged"), "voicemail": _l("answering machine"), "retry": _l("retry"), "failed": _l("failed"),
          "expired": _l("expired"), "cancelled": _l("cancelled")}
CATEGORIES = {"urgent": _l("Urgent"), "prevention": _l("Prevention"), "feedback": _l("Feedback")}
CHANNELS = {"member": _l("as each member prefers"), "sms": _l("SMS"), "voice": _l("voice call"),
            "sms+voice": _l("SMS + voice call")}
DEVICE_STATES = {DeviceState.UP.value: _l("working"), DeviceState.DOWN.value: _l("down"),
                 DeviceState.STARTING.value: _l("starting")}
LANGUAGE_NAMES = {"nl": _l("Dutch"), "fr": _l("French"), "de": _l("German"), "en": _l("English")}


def template_globals() -> dict:
    return {"STATE_LABELS": STATES, "CATEGORY_LABELS": CATEGORIES, "CHANNEL_LABELS": CHANNELS,
            "LANGUAGE_LABELS": LANGUAGE_NAMES, "DEVICE_STATE_LABELS": DEVICE_STATES}
