"""Claim cost with a retry backlog, and the rate limiter's smoothness.

    python -m benchmarks.claims

Claims: 100,000 queued messages of which 90,000 back off (retry, due in an hour).
The claim, the idle poll and sweep_withdrawn must not read the rows in backoff:
their p99 is printed beside the same figure without a backlog. The target is on
the thread's CPU time (what a claim costs the machine); wall-clock p99 is printed
too, as information: on a shared machine it measures the scheduler as much as us.

Limiter: an emulated device with 1, 4 and 8 slots at a fixed rate; the largest
number of sends that started within half a token interval (the burst) and the
sustained rate against the configured one.
"""
from __future__ import annotations

import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import insert, update

from benchmarks.common import POLICY, Result
from gatewayd.channels.base import Outcome
from gatewayd.channels.emulated import EmulatedChannel
from gatewayd.config import EmulatedConfig
from gatewayd.db import make_engine, migrate
from gatewayd.dispatch import Dispatcher
from gatewayd.model import Alert, AlertState, Category, Message, MessageState
from gatewayd.store import AlertRequest, Store

TOTAL, BACKING_OFF, SAMPLES = 100_000, 90_000, 2000


def _store(tmp: Path, name: str) -> Store:
    url = f"sqlite:///{tmp}/{name}.db"
    migrate(url)
    return Store(make_engine(url), POLICY)


def _fill(store: Store, total: int, backing_off: int) -> None:
    """One urgent alert with TOTAL messages; BACKING_OFF of them retry in an hour. Plus a cancelled
    alert, so sweep_withdrawn has something to look at."""
    now = datetime.now(timezone.utc)
    later = now + timedelta(hours=1)
    with store.engine.begin() as c:
        ids = [c.execute(insert(Alert).returning(Alert.id), {
            "category": Category.URGENT.value, "priority": Category.URGENT.priority, "text": "x", "texts": {},
            "state": state.value, "created_at": now, "expires_at": later, "last_served": 0.0, "drill": False,
            "channel_mode": "member", "author": "bench", "approved_by": ""}).scalar_one()
            for state in (AlertState.ACTIVE, AlertState.CANCELLED)]
        rows = [{"alert_id": ids[0], "number": f"+3247{i:07d}", "channel": "sms", "language": "nl", "text": "x",
                 "priority": 3, "state": (MessageState.RETRY if i < backing_off else MessageState.QUEUED).value,
                 "not_before": later if i < backing_off else now, "created_at": now, "updated_at": now}
                for i in range(total)]
        c.execute(insert(Message), rows)


def _p99(samples: list[float]) -> float:
    samples = sorted(samples)
    return samples[int(len(samples) * 0.99)] * 1000


def _measure(fn, n: int) -> tuple[float, float]:
    """(CPU p99, wall p99) in ms of N calls of FN."""
    cpu, wall = [], []
    for _ in range(n):
        c0, w0 = time.thread_time(), time.perf_counter()
        fn()
        cpu.append(time.thread_time() - c0)
        wall.append(time.perf_counter() - w0)
    return _p99(cpu), _p99(wall)


def _claims(store: Store) -> dict[str, tuple[float, float]]:
    claimed = []

    def claim():
        c = store.claim("sms", "sim1", "bench")
        if c is not None:
            claimed.append(c)

    out = {"claim": _measure(claim, SAMPLES)}
    for c in claimed:
        store.complete(c, "sim1", Outcome.sent(reference=1))
    with store.engine.begin() as c:      # nothing claimable is left: every poll comes back empty
        c.execute(update(Message).where(Message.state == MessageState.QUEUED.value)
                  .values(state=MessageState.SENT.value))
    out["idle poll"] = _measure(lambda: store.claim("sms", "sim1", "bench"), SAMPLES)
    out["sweep_withdrawn"] = _measure(store.sweep_withdrawn, SAMPLES // 4)
    return out


def bench_claims(tmp: Path) -> list[Result]:
    base = _store(tmp, "no-backlog")
    _fill(base, TOTAL - BACKING_OFF, 0)
    backlog = _store(tmp, "backlog")
    _fill(backlog, TOTAL, BACKING_OFF)
    plain, loaded = _claims(base), _claims(backlog)
    results = []
    for what in ("claim", "idle poll", "sweep_withdrawn"):
        (cpu0, wall0), (cpu, wall) = plain[what], loaded[what]
        results.append(Result(f"{what} p99 CPU, {TOTAL:,} queued of which {BACKING_OFF:,} in retry "
                              f"(without backlog: {cpu0:.3f} ms)", cpu, "ms", "<= 2 ms", cpu <= 2.0))
        results.append(Result(f"{what} p99 wall clock, same (without backlog: {wall0:.3f} ms)", wall, "ms",
                              "information: includes waiting for a CPU on a shared machine", None))
    return results


def bench_limiter(tmp: Path) -> list[Result]:
    rate = 600.0                                  # one every 0.1 s
    interval = 60.0 / rate
    results = []
    for capacity in (1, 4, 8):
        store = _store(tmp, f"limiter{capacity}")
        rows = "\n".join(f"m{i},+3247{i:07d},sms,nl" for i in range(60))
        store.add_network("N")
        store.import_members("N", "name,phone,channel,lang\n" + rows)
        store.enqueue_alert(AlertRequest(networks=("N",), category="urgent", text="x"))
        ch = EmulatedChannel(EmulatedConfig(name="dev", latency=0.02, rate_per_minute=rate, capacity=capacity))
        d = Dispatcher(POLICY, store, [ch], node="bench")
        d.start()
        assert d.wait_idle(60)
        d.stop()
        stamps = sorted(r.at for r in ch.sent)
        # Burst: the most sends that started within any half token interval (one "instant").
        burst = max(sum(1 for t in stamps[i:] if t - s < 0.5 * interval) for i, s in enumerate(stamps))
        sustained = (len(stamps) - 1) / (stamps[-1] - stamps[0]) * 60.0
        off = abs(sustained - rate) / rate * 100
        results.append(Result(f"limiter, capacity {capacity} at {rate:g}/min: largest burst", burst, "sends",
                              "<= 1", burst <= 1))
        results.append(Result(f"limiter, capacity {capacity}: sustained {sustained:.1f}/min, off the "
                              f"configured {rate:g}/min by", off, "%", "<= 2 %", off <= 2.0))
        store.engine.dispose()
    return results


BENCHES = (bench_claims, bench_limiter)


def main() -> int:
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as d:
        # --limiter: only the limiter (the claim figures take a minute to set up).
        for bench in BENCHES[1 if "--limiter" in sys.argv else 0:]:
            for item in bench(Path(d)):
                print(item.line(), flush=True)
                results.append(item)
    return 0 if all(r.ok is not False for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
