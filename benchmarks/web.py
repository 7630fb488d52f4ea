"""Page render time while the daemon dispatches 10,000 messages on the same SQLite file.

Target: p95 of page renders < 200 ms. The daemon (`gatewayd run`, a separate
process as in production) drains an urgent alert of 10,000 messages through
emulated modems with no latency, so it writes to the database as fast as it
can; meanwhile this process renders the police page's main pages in a loop
(Flask test client: the app and its SQL, without the network stack).

    python -m benchmarks.web [--messages 10000] [--max-seconds 300]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_P95_MS = 200.0
PASSWORD = "benchmark-password-1"


def write_config(tmp: Path, db: Path) -> Path:
    conf = tmp / "gatewayd.toml"
    devices = "".join(f'[[emulated]]\nname = "sim{i}"\nlatency = 0.0\nrate_per_minute = 1000000.0\n\n'
                      for i in range(1, 5))
    conf.write_text(f'[database]\nurl = "sqlite:///{db}"\n\n[dispatch]\nquiet_hours = ""\n\n'
                    f'[web]\nsecret_key = "bench"\n\n{devices}', encoding="utf-8")
    return conf


def populate(store, n: int) -> int:
    """A network of N members, a user of each role; an urgent alert to all of them. Returns the alert id."""
    from gatewayd.model import AuditAction
    from gatewayd.store import AlertRequest
    store.add_network("Benchwijk", zone="Zone Bench")
    rows = "\n".join(f"Lid {i},+324760{i:05d},sms,{'nl' if i % 3 else 'fr'}" for i in range(n))
    store.import_members("Benchwijk", "name,phone,channel,lang\n" + rows)
    store.add_user("agent", PASSWORD, "police", zone="Zone Bench")
    store.add_user("admin", PASSWORD, "admin")
    for i in range(300):          # an audit log with some history
        store.audit("agent", AuditAction.LOGIN, {"i": i}, "127.0.0.1")
    return store.enqueue_alert(AlertRequest(networks=("Benchwijk",), category="urgent",
                                            text="BIN-alarm: benchmark", author="agent")).alert_id


def pages(alert_id: int) -> list[tuple[str, str]]:
    """(user, path) rendered in turn: what officers and the admin look at during an alert."""
    return [("agent", "/"), ("agent", f"/alerts/{alert_id}"), ("agent", f"/alerts/{alert_id}/status.json"),
            ("agent", f"/alerts/{alert_id}?page=50"), ("agent", "/alerts/new?category=urgent&template=burglary"),
            ("agent", "/members"), ("agent", "/members?q=Lid%2099"), ("agent", "/inbox"), ("agent", "/devices"),
            ("admin", "/audit"), ("admin", "/alerts"), ("agent", "/networks")]


def pending(store, alert_id: int) -> int:
    counts = store.alert_status(alert_id)["messages"]
    return sum(counts.get(s, 0) for s in ("queued", "retry", "sending"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=10_000)
    ap.add_argument("--max-seconds", type=float, default=300.0)
    args = ap.parse_args(argv)

    from sqlalchemy import select

    from gatewayd.config import load_config
    from gatewayd.db import make_engine, migrate
    from gatewayd.model import User
    from gatewayd.store import Store
    from web import create_app

    with tempfile.TemporaryDirectory(prefix="gatewayd-bench-web-") as d:
        tmp = Path(d)
        db = tmp / "gatewayd.db"
        conf = write_config(tmp, db)
        migrate(f"sqlite:///{db}")
        cfg = load_config(conf)
        store = Store(make_engine(cfg.database.url), cfg.dispatch)
        store.seed_templates()          # as `gatewayd init-db` does
        alert_id = populate(store, args.messages)
        app = create_app(cfg, store)
        clients = {}
        for name in ("agent", "admin"):
            c = app.test_client()
            with store.session() as s:
                uid, version = s.execute(select(User.id, User.session_version)
                                         .where(User.username == name)).one()
            # A page session carries the user's session version and its start (web/auth.py).
            with c.session_transaction() as sess:
                sess["user_id"], sess["ver"], sess["since"] = uid, version, int(time.time())
            clients[name] = c
        # Warm the template cache and SQL statement caches first, as a running server would be.
        for user, path in pages(alert_id):
            assert clients[user].get(path).status_code == 200, path

        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        daemon = subprocess.Popen([sys.executable, "-m", "gatewayd", "-c", str(conf), "run"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=open(tmp / "daemon.log", "w"))
        times: list[float] = []
        per_path: dict[str, list[float]] = {}
        started = time.monotonic()
        seq = pages(alert_id)
        try:
            # Wait until the daemon is really dispatching, so every render competes with it.
            while pending(store, alert_id) == args.messages and time.monotonic() - started < 30:
                time.sleep(0.05)
            t_dispatch = time.monotonic()
            i = 0
            while pending(store, alert_id) > 0 and time.monotonic() - started < args.max_seconds:
                user, path = seq[i % len(seq)]
                t0 = time.perf_counter()
                resp = clients[user].get(path)
                ms = (time.perf_counter() - t0) * 1000.0
                times.append(ms)
                per_path.setdefault(path, []).append(ms)
                if resp.status_code != 200:
                    print(f"FAIL: {path} answered {resp.status_code}")
                    return 1
                i += 1
            dispatch_s = time.monotonic() - t_dispatch
            left = pending(store, alert_id)
        finally:
            daemon.terminate()
            try:
                daemon.wait(timeout=60)
            except subprocess.TimeoutExpired:
                daemon.kill()
        if not times:
            print("FAIL: the daemon never started dispatching; see its log:")
            print((tmp / "daemon.log").read_text()[-2000:])
            return 1
        times.sort()
        p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
        p50 = statistics.median(times)
        done = args.messages - left
        print(f"dispatched {done}/{args.messages} messages in {dispatch_s:.1f} s "
              f"({done / dispatch_s:.0f}/s) while rendering {len(times)} pages")
        for path, ts in sorted(per_path.items(), key=lambda kv: -statistics.median(kv[1])):
            print(f"  {statistics.median(ts):7.1f} ms median  {max(ts):7.1f} ms max  {path}")
        print(f"page render p50 {p50:.1f} ms, max {times[-1]:.1f} ms")
        ok = p95 < TARGET_P95_MS and left == 0
        print(f"page render p95 {p95:.1f} ms  (target < {TARGET_P95_MS:.0f} ms)  {'OK' if ok else 'MISSED'}")
        if left:
            print(f"MISSED: {left} messages still pending after {args.max_seconds:.0f} s")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
