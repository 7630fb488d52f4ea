"""Devices gatewayd sends through. `build_channels` turns config into channels."""
from __future__ import annotations

from ..config import Config
from .base import Channel


def build_channels(cfg: Config) -> list[Channel]:
    """One channel per configured device. Imports only what is configured."""
    channels: list[Channel] = []
    if cfg.emulated:
        from .emulated import EmulatedChannel
        channels += [EmulatedChannel(e) for e in cfg.emulated]
    if cfg.modems:
        from .modem import ModemChannel
        channels += [ModemChannel(m, cfg.sms) for m in cfg.modems]
    if cfg.hilink:
        from .hilink import HilinkChannel
        channels += [HilinkChannel(h, cfg.sms) for h in cfg.hilink]
    if cfg.asterisk is not None:
        from .voice import VoiceChannel
        channels.append(VoiceChannel(cfg.asterisk, cfg.tts))
    return channels
