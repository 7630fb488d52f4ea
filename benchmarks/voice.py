"""Voice benchmark against the real Asterisk rig.

  python -m benchmarks.voice

Figures, each beside its target (exit status 1 when one is missed):
  * 40 calls, max_calls = 8, each held 3 s by the test dialplan: wall time
    within 10 % of the ideal 15 s (5 rounds of 3 s), all delivered;
  * speech render time per message (header + message, repeat + prompt), cold
    (nothing cached) and cached.
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
COLD_TARGET = 1.0      # seconds per message, nothing cached
CACHED_TARGET = 0.05   # seconds per message, both files cached

TEXTS = [f"Bericht {i}: verdachte personen gezien in de Kerkstraat, sluit ramen en deuren." for i in range(20)]


def campaign(rig: AsteriskRig, cache: str) -> tuple[float, dict[str, int]]:
    """Place CALLS calls through one channel driven by MAX_CALLS threads (like the dispatcher)."""
    cfg = AsteriskConfig(host=rig.ami.host, port=rig.ami.port, username=rig.ami.username, secret=rig.ami.secret,
                         channel="Local/{number}@bin-test", context="bin-alert", max_calls=MAX_CALLS,
                         ring_timeout=10.0, audio_listen="127.0.0.1:0", confirm_wait=1.0)
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
            out = ch.send(Delivery(i + 1, hold(HOLD), "Hallo."))
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


def render_times() -> tuple[float, float]:
    """Median seconds per message to render both call files, cold and cached."""
    with tempfile.TemporaryDirectory() as cache:
        r = SpeechRenderer(TtsConfig(cache_dir=cache))
        cold, cached = [], []
        for text in TEXTS:
            t0 = time.monotonic()
            r.render_call(text, "nl")
            cold.append(time.monotonic() - t0)
        for text in TEXTS:
            t0 = time.monotonic()
            r.render_call(text, "nl")
            cached.append(time.monotonic() - t0)
    return statistics.median(cold), statistics.median(cached)


def line(label: str, value: str, target: str, ok: bool) -> bool:
    print(f"  {label:<44} {value:>12}   target {target:<14} {'ok' if ok else 'MISSED'}")
    return ok


def main() -> int:
    rig = shared_rig()
    try:
        with tempfile.TemporaryDirectory() as cache:
            elapsed, results = campaign(rig, cache)
        cold, cached = render_times()
    finally:
        rig.cleanup()
    delivered = results.get(OutcomeKind.DELIVERED.value, 0)
    ok = [
        line(f"{CALLS} calls x {HOLD}s, max_calls={MAX_CALLS}", f"{elapsed:.2f} s",
             f"<= {CAMPAIGN_TARGET:.1f} s", elapsed <= CAMPAIGN_TARGET),
        line("  ratio to the ideal 15 s", f"{elapsed / IDEAL:.3f}", "<= 1.100", elapsed <= CAMPAIGN_TARGET),
        line("  calls delivered", f"{delivered}/{CALLS}", f"{CALLS}/{CALLS}", delivered == CALLS),
        line("speech render per message, cold", f"{cold * 1000:.0f} ms", f"<= {COLD_TARGET * 1000:.0f} ms",
             cold <= COLD_TARGET),
        line("speech render per message, cached", f"{cached * 1000:.1f} ms", f"<= {CACHED_TARGET * 1000:.0f} ms",
             cached <= CACHED_TARGET),
    ]
    if delivered != CALLS:
        print(f"  outcomes: {results}")
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main())
