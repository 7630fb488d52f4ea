"""Text to speech for alert calls: espeak-ng -> 8 kHz 16-bit mono WAV.

A call is a few audio files, each cached by text + voice + rate under an opaque
hash name in `TtsConfig.cache_dir`:

  main       the spoken header ("Dringend bericht ...") followed by the message
  prompt     "press 1 to confirm, press 0 to hear the message again"
  thanks     "thank you, your confirmation is recorded" (after a 1 was written)
  voicemail  the short message left on an answering machine: where to get the full text

The dialplan plays `main` with Playback (its PLAYBACKSTATUS proves the member
heard the message), then `prompt` as the prompt of Read, so a member can press
a key while it still plays; 0 replays `main` + `prompt`.

Two speech engines behind the same renderer, chosen per language:
espeak-ng (the default; see `_Espeak` for why its CLI and not pyttsx3's file
output) and Piper, a neural voice (`[tts] piper_voice_<lang>` = the path of a
voice's .onnx file, its .onnx.json beside it; see `_Piper`). sox converts
either to 8 kHz mono (what Asterisk's format_wav plays natively; Piper speaks
at 16-22 kHz) and normalises the level for phone lines.
A render that fails, or comes out silent or too short, raises `TtsError`.
"""
from __future__ import annotations

import array
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gatewayd.config import TtsConfig

log = logging.getLogger(__name__)

# espeak-ng voice per member language (Belgian French where espeak has it).
VOICES = {"nl": "gmw/nl", "fr": "roa/fr-be", "de": "gmw/de", "en": "gmw/en"}

# Said after the message; both keys announced in the member's language.
PROMPTS = {
    "nl": "Druk op 1 om te bevestigen dat u dit bericht gehoord hebt. Druk op 0 om het opnieuw te horen.",
    "fr": "Appuyez sur 1 pour confirmer que vous avez entendu ce message. Appuyez sur 0 pour le réécouter.",
    "de": "Drücken Sie die 1, um zu bestätigen, dass Sie diese Nachricht gehört haben. "
          "Drücken Sie die 0, um sie noch einmal zu hören.",
    "en": "Press 1 to confirm that you have heard this message. Press 0 to hear it again.",
}
THANKS = {
    "nl": "Dank u. Uw bevestiging is genoteerd.",
    "fr": "Merci. Votre confirmation est enregistrée.",
    "de": "Danke. Ihre Bestätigung ist gespeichert.",
    "en": "Thank you. Your confirmation has been recorded.",
}
# Left on an answering machine: never the alert itself (a machine may be heard by
# anyone in the house, and half a message is worse than none), only where to get it.
VOICEMAIL_CALL_BACK = {
    "nl": "Bel {number} om het volledige bericht te beluisteren.",
    "fr": "Appelez le {number} pour écouter le message complet.",
    "de": "Rufen Sie {number} an, um die ganze Nachricht zu hören.",
    "en": "Call {number} to hear the full message.",
}
# The callback line (calls to the box). A stranger hears only the neutral sentence:
# nothing about any alert, network or member.
CALLBACK_NEUTRAL = {
    "nl": "U belt naar een automatische berichtendienst. Tot ziens.",
    "fr": "Vous appelez un service de messages automatique. Au revoir.",
    "de": "Sie rufen einen automatischen Nachrichtendienst an. Auf Wiederhören.",
    "en": "You have reached an automatic message service. Goodbye.",
}
CALLBACK_BYE = {
    "nl": "Dat waren alle berichten. Tot ziens.",
    "fr": "C'étaient tous les messages. Au revoir.",
    "de": "Das waren alle Nachrichten. Auf Wiederhören.",
    "en": "Those were all the messages. Goodbye.",
}
CALLBACK_NONE = {
    "nl": "Er zijn geen berichten van de laatste {hours} uur. Tot ziens.",
    "fr": "Il n'y a pas de message des {hours} dernières heures. Au revoir.",
    "de": "Es gibt keine Nachrichten aus den letzten {hours} Stunden. Auf Wiederhören.",
    "en": "There are no messages from the last {hours} hours. Goodbye.",
}
VOICEMAIL_LATER = {
    "nl": "Wij bellen u later opnieuw.",
    "fr": "Nous vous rappellerons plus tard.",
    "de": "Wir rufen Sie später noch einmal an.",
    "en": "We will call you again later.",
}

SAMPLE_RATE = 8000
PIPER_PREFIX = "piper:"   # a voice_for() value naming a Piper model file
MIN_SECONDS = 0.4       # shorter than this cannot be a spoken sentence
MIN_RMS = 150           # 16-bit RMS; espeak speech after normalising is in the thousands
_FORMAT_VERSION = "1"   # bump when the conversion changes, so old cache entries are not reused
NAME_CHARS = 32         # hex characters in an audio file's opaque name


class TtsError(Exception):
    """Speech could not be rendered for this text; the message says why."""


class TtsUnavailable(TtsError):
    """The speech tooling itself is broken (espeak-ng or sox): no text can be rendered."""


@dataclass(frozen=True)
class CallAudio:
    """The rendered files of one call, by opaque name (`<hex>.wav` in the cache dir)."""

    main: str        # header + message
    prompt: str      # "press 1 to confirm, 0 to repeat"
    thanks: str      # "thank you, recorded"
    voicemail: str   # the short message for an answering machine
    seconds: float   # duration of main + prompt (what a person hears at least)

    @property
    def files(self) -> tuple[str, str, str, str]:
        return self.main, self.prompt, self.thanks, self.voicemail


def spoken_number(e164: str) -> str:
    """'+3211000000' -> '0 1 1, 0 0, 0 0, 0 0': the national form, digit by digit, in its groups."""
    import phonenumbers
    try:
        national = phonenumbers.format_number(phonenumbers.parse(e164, "BE"),
                                              phonenumbers.PhoneNumberFormat.NATIONAL)
    except phonenumbers.NumberParseException:
        national = e164
    groups = [g for g in national.replace("/", " ").replace(".", " ").split() if g]
    return ", ".join(" ".join(ch for ch in g if ch.isdigit()) for g in groups)


def audio_name(text: str, voice: str, rate: int) -> str:
    """Opaque, stable file name for one rendered text (hash of text, voice, rate, format)."""
    h = hashlib.sha256("\x00".join((_FORMAT_VERSION, voice, str(rate), text)).encode("utf-8"))
    return h.hexdigest()[:NAME_CHARS] + ".wav"


def is_audio_name(name: str) -> bool:
    """True for names this module produces; anything else is never served or read."""
    return (len(name) == NAME_CHARS + 4 and name.endswith(".wav")
            and all(c in "0123456789abcdef" for c in name[:NAME_CHARS]))


@dataclass(frozen=True)
class AudioStats:
    seconds: float
    rms: float
    rate: int
    channels: int
    width: int


def audio_stats(path: Path) -> AudioStats:
    """Duration and RMS level of a 16-bit PCM WAV (pure Python: audioop is gone in 3.13)."""
    with wave.open(str(path), "rb") as w:
        rate, channels, width, frames = w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes()
        data = w.readframes(frames)
    if width != 2:
        return AudioStats(frames / rate if rate else 0.0, 0.0, rate, channels, width)
    samples = array.array("h")
    samples.frombytes(data[: len(data) - len(data) % 2])
    if sys.byteorder == "big":   # WAV is little-endian
        samples.byteswap()
    rms = (sum(s * s for s in samples) / len(samples)) ** 0.5 if samples else 0.0
    return AudioStats(frames / rate if rate else 0.0, rms, rate, channels, width)


def audio_seconds(path: Path) -> float:
    """Duration of a WAV from its header alone (a cached render was checked when it was made)."""
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / w.getframerate() if w.getframerate() else 0.0


def check_audible(path: Path) -> AudioStats:
    """Raise TtsError unless `path` is 8 kHz mono 16-bit speech of some length and level."""
    try:
        st = audio_stats(path)
    except (wave.Error, EOFError, OSError) as exc:
        raise TtsError(f"rendered audio {path.name} is not a readable WAV: {exc}") from None
    if (st.rate, st.channels, st.width) != (SAMPLE_RATE, 1, 2):
        raise TtsError(f"rendered audio {path.name} is {st.rate} Hz/{st.channels} ch/{st.width * 8} bit, "
                       f"expected 8000 Hz mono 16 bit")
    if st.seconds < MIN_SECONDS:
        raise TtsError(f"rendered audio is only {st.seconds:.2f}s long: nothing was spoken")
    if st.rms < MIN_RMS:
        raise TtsError(f"rendered audio is silent (RMS {st.rms:.0f} < {MIN_RMS}): refusing a silent call")
    return st


class _Espeak:
    """espeak-ng, run as its command-line program (one process per render).

    Why not pyttsx3's save_to_file: pyttsx3 2.99's espeak driver (headless it
    does work, through libespeak-ng in retrieval mode) writes the WAV from a
    ctypes callback when espeak reports the end of the message, and that event
    can arrive before the audio: in our measurements about one render in 150
    came out as an empty WAV, and the same text gave WAVs of different sizes.
    Its engine is also one process-wide object that is not thread-safe. For an
    alert nobody may receive a cut-off or silent message, so we call the same
    espeak-ng (same voices, same rate in words per minute) through its CLI,
    which is deterministic, needs no lock, and lets calls render in parallel.
    """

    TIMEOUT = 60.0

    @classmethod
    def synth(cls, text: str, voice: str, rate: int, out: Path) -> None:
        exe = shutil.which("espeak-ng")
        if not exe:
            raise TtsUnavailable("espeak-ng is not installed; install espeak-ng (scripts/system-deps run)")
        # Text on stdin (-b 1: UTF-8), never on the command line: a text starting
        # with "-" must not be read as an option. SSML stays off (no -m).
        cmd = [exe, "-b", "1", "-v", voice, "-s", str(rate), "-w", str(out), "--stdin"]
        try:
            r = subprocess.run(cmd, input=text.encode("utf-8"), capture_output=True, timeout=cls.TIMEOUT)
        except subprocess.TimeoutExpired:
            raise TtsUnavailable(f"espeak-ng did not finish within {cls.TIMEOUT:.0f}s") from None
        if r.returncode != 0:
            msg = r.stderr.decode("utf-8", "replace").strip() or f"exit status {r.returncode}"
            raise TtsError(f"espeak-ng could not speak with voice {voice}: {msg}")


class _Piper:
    """Piper (PyPI piper-tts), in process: one loaded voice per model file, reused.

    The only place gatewayd touches piper's API (PiperVoice.load, synthesize_wav).
    A voice is an .onnx model with its .onnx.json config beside it, installed by
    the admin (see README). Loading takes seconds, so voices stay loaded; one
    lock per voice, because the phonemizer underneath is not documented as
    thread-safe. Piper writes 16-bit mono at the voice's own rate (16 or 22 kHz);
    sox resamples it like espeak's output.
    """

    _voices: dict[str, object] = {}
    _locks: dict[str, threading.Lock] = {}
    _guard = threading.Lock()

    @classmethod
    def voice(cls, model: str) -> tuple[Any, threading.Lock]:
        with cls._guard:
            if model in cls._voices:
                return cls._voices[model], cls._locks[model]
        try:
            from piper import PiperVoice
        except ImportError:
            raise TtsUnavailable("a Piper voice is configured but piper-tts is not installed; "
                                 "pip install 'gatewayd[piper]' or clear [tts] piper_voice_*") from None
        path = Path(model)
        config = path.with_name(path.name + ".json")
        if not path.is_file() or not config.is_file():
            raise TtsUnavailable(f"Piper voice {path} (and {config.name} beside it) not found; install the "
                                 f"voice files there or fix [tts] piper_voice_*")
        try:
            loaded = PiperVoice.load(path, config)
        except Exception as exc:   # onnxruntime and JSON errors alike: the voice file is unusable
            raise TtsUnavailable(f"Piper could not load the voice {path.name}: {exc}") from None
        with cls._guard:
            cls._voices.setdefault(model, loaded)
            cls._locks.setdefault(model, threading.Lock())
            return cls._voices[model], cls._locks[model]

    @classmethod
    def synth(cls, text: str, model: str, out: Path) -> None:
        voice, lock = cls.voice(model)
        try:
            with lock, wave.open(str(out), "wb") as w:
                voice.synthesize_wav(text, w)
        except TtsError:
            raise
        except Exception as exc:
            raise TtsError(f"Piper could not speak with {Path(model).name}: {exc}") from None


def _sox(src: Path, dst: Path) -> None:
    """Resample to 8 kHz mono 16-bit WAV, normalise to -3 dBFS, pad a little silence."""
    sox = shutil.which("sox")
    if not sox:
        raise TtsUnavailable("sox is not installed; install it (scripts/system-deps run)")
    cmd = [sox, "-q", str(src), "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", "-e", "signed-integer",
           str(dst), "gain", "-n", "-3", "pad", "0.2", "0.3"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise TtsError(f"sox could not convert the speech: {r.stderr.strip() or r.returncode}")


class SpeechRenderer:
    """Renders alert texts into cached 8 kHz WAV files for Asterisk."""

    def __init__(self, cfg: TtsConfig):
        self.cfg = cfg
        self.cache_dir = Path(cfg.cache_dir)

    def voice_for(self, language: str) -> str:
        """The voice for a member language: 'piper:<model path>' or an espeak-ng voice name;
        TtsError for a language we do not speak."""
        if language not in VOICES:
            raise TtsError(f"no voice for language {language!r} (known: {', '.join(VOICES)})")
        piper = getattr(self.cfg, f"piper_voice_{language}", "")
        return f"{PIPER_PREFIX}{piper}" if piper else VOICES[language]

    def engine_for(self, language: str) -> str:
        """'piper' or 'espeak-ng': which engine speaks LANGUAGE."""
        return "piper" if self.voice_for(language).startswith(PIPER_PREFIX) else "espeak-ng"

    def header(self, language: str) -> str:
        return getattr(self.cfg, f"header_{language}", "") if language in VOICES else ""

    def render_call(self, text: str, language: str, callback_number: str = "") -> CallAudio:
        """Render (or reuse) the files of one call; raise TtsError on any failure."""
        text = " ".join(text.split())
        if not text:
            raise TtsError("the message text is empty: nothing to say")
        main = self.render(f"{self.header(language)} {text}".strip(), language)
        prompt = self.render(PROMPTS[language], language)
        secs = sum(audio_seconds(self.path(n)) for n in (main, prompt))
        return CallAudio(main, prompt, self.render(THANKS[language], language),
                         self.render(self.voicemail_text(language, callback_number), language), secs)

    def voicemail_text(self, language: str, callback_number: str = "") -> str:
        """What an answering machine gets: the header and where to hear the full message."""
        where = (VOICEMAIL_CALL_BACK[language].format(number=spoken_number(callback_number))
                 if callback_number else VOICEMAIL_LATER[language])
        return f"{self.header(language)} {where}".strip()

    def render(self, text: str, language: str) -> str:
        """Render one text to a cached WAV; return its opaque name."""
        voice = self.voice_for(language)
        name = audio_name(text, voice, self.cfg.rate)
        final = self.path(name)
        if final.exists():
            return name
        self._ensure_dir()
        t0 = time.monotonic()
        with tempfile.TemporaryDirectory(dir=self.cache_dir, prefix=".render-") as tmp:
            raw, out = Path(tmp) / "raw.wav", Path(tmp) / name
            if voice.startswith(PIPER_PREFIX):
                _Piper.synth(text, voice[len(PIPER_PREFIX):], raw)
            else:
                _Espeak.synth(text, voice, self.cfg.rate, raw)
            if not raw.exists() or raw.stat().st_size <= 44:
                raise TtsError(f"{self.engine_for(language)} produced no audio for voice {voice}")
            _sox(raw, out)
            check_audible(out)
            os.chmod(out, 0o644)   # Asterisk (another user) may read it from a shared audio_dir
            os.replace(out, final)  # atomic: a reader never sees half a file
        log.debug("rendered %s (%s) in %.0f ms", name, voice, (time.monotonic() - t0) * 1000)
        return name

    def path(self, name: str) -> Path:
        """Path of a rendered file; ValueError for anything but an opaque audio name."""
        if not is_audio_name(name):
            raise ValueError(f"not a rendered audio name: {name!r}")
        return self.cache_dir / name

    def _ensure_dir(self) -> None:
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TtsUnavailable(f"cannot create the audio cache {self.cache_dir}: {exc.strerror}; "
                                 f"set [tts] cache_dir to a writable directory") from None
