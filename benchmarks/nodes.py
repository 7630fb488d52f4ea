"""Several gateways on one PostgreSQL queue: each figure printed beside its target; exit 1 when one is missed.

    GATEWAYD_TEST_PG_URL=postgresql+psycopg://... python -m benchmarks.nodes

Real `gatewayd run` processes, each with two emulated SIMs of 50 ms per send.
"""
from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, func, select, text

from benchmarks.common import POLICY, Result
from gatewayd.db import make_engine, migrate
from gatewayd.model import Alert, Attempt, Message, Node
from gatewayd.store import AlertRequest, Store

LATENCY = 0.05
PER_NODE = 400            # messages per node in the throughput runs: about 10 s of sending
IDLE_SECONDS = 4.0        # a node this long without work has backed its polling off to the maximum
WAKEUPS = 5


class Rig:
    """A fresh database in the PostgreSQL rig and the gateways started on it."""

    def __init__(self, base_url: str, tmp: Path, name: str):
        self.db_name = f"bench_{name}_{uuid.uuid4().hex[:8]}"
        self.admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
        with self.admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{self.db_name}"'))
        self.url = base_url.rsplit("/", 1)[0] + "/" + self.db_name
        migrate(self.url)
        self.store = Store(make_engine(self.url), POLICY)
        self.tmp = tmp / name
        self.tmp.mkdir()
        self.procs: list[subprocess.Popen] = []

    def start(self, nodes: int) -> None:
        for i in range(nodes):
            conf = self.tmp / f"node{i}.toml"
            conf.write_text(f'[database]\nurl = "{self.url}"\n'
                            f'[[emulated]]\nname = "sim1"\nlatency = {LATENCY}\n'
                            f'[[emulated]]\nname = "sim2"\nlatency = {LATENCY}\n'
                            f'[dispatch]\nquiet_hours = ""\nnode = "bench{i}"\n'
                            f'node_id_file = "{self.tmp}/node{i}.id"\nheartbeat_seconds = 1.0\n'
                            '[logging]\nlevel = "WARNING"\n')
            self.procs.append(subprocess.Popen([sys.executable, "-m", "gatewayd", "-c", str(conf), "run"],
                                               stdout=(self.tmp / f"node{i}.log").open("w"),
                                               stderr=subprocess.STDOUT))
        deadline = time.monotonic() + 120
        while self._beating() < nodes:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {self._beating()} of {nodes} gateways started; see {self.tmp}")
            time.sleep(0.1)

    def _beating(self) -> int:
        with self.store.engine.connect() as c:
            return c.scalar(select(func.count()).select_from(Node).where(Node.heartbeat_at > Node.started_at))

    def members(self, n: int) -> None:
        self.store.add_network("N")
        self.store.import_members("N", "name,phone,channel,lang\n" +
                                  "\n".join(f"m{i},+3247{i:07d},sms,nl" for i in range(n)))

    def wait_done(self, alert_id: int, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while self.store.alert_status(alert_id)["state"] != "done":
            if time.monotonic() > deadline:
                raise RuntimeError(f"alert {alert_id} not done within {timeout:.0f} s; see {self.tmp}")
            time.sleep(0.2)

    def close(self) -> None:
        for p in self.procs:
            p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
        self.store.engine.dispose()
        with self.admin.connect() as c:
            c.execute(text(f'DROP DATABASE "{self.db_name}" WITH (FORCE)'))
        self.admin.dispose()


def throughput(base_url: str, tmp: Path, nodes: int) -> float:
    """Messages per second, first claim to last outcome, of NODES gateways draining one alert."""
    rig = Rig(base_url, tmp, f"n{nodes}")
    try:
        rig.members(PER_NODE * nodes)
        rig.start(nodes)
        alert_id = rig.store.enqueue_alert(AlertRequest(networks=("N",), category="urgent", text="x")).alert_id
        rig.wait_done(alert_id)
        with rig.store.engine.connect() as c:
            first, last = c.execute(select(func.min(Attempt.started_at), func.max(Attempt.ended_at))).one()
            used = c.scalar(select(func.count(func.distinct(Message.node))))
        if used != nodes:
            raise RuntimeError(f"only {used} of {nodes} gateways sent anything")
        return PER_NODE * nodes / (last - first).total_seconds()
    finally:
        rig.close()


def idle_wakeup(base_url: str, tmp: Path) -> list[float]:
    """Seconds from an alert's commit-time stamp to its first send, on a node idle for IDLE_SECONDS."""
    rig = Rig(base_url, tmp, "idle")
    try:
        rig.members(1)
        rig.start(1)
        took = []
        for _ in range(WAKEUPS):
            time.sleep(IDLE_SECONDS)
            alert_id = rig.store.enqueue_alert(AlertRequest(networks=("N",), category="urgent", text="x")).alert_id
            rig.wait_done(alert_id, 30)
            with rig.store.engine.connect() as c:
                created = c.scalar(select(Alert.created_at).where(Alert.id == alert_id))
                started = c.scalar(select(func.min(Attempt.started_at)).join(Message, Message.id == Attempt.message_id)
                                   .where(Message.alert_id == alert_id))
            took.append((started - created).total_seconds())
        return took
    finally:
        rig.close()


def main() -> int:
    base = os.environ.get("GATEWAYD_TEST_PG_URL")
    if not base:
        print("SKIP  benchmarks/nodes: GATEWAYD_TEST_PG_URL not set (scripts/bench starts the PostgreSQL rig)")
        return 0
    results = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        one = throughput(base, tmp, 1)
        three = throughput(base, tmp, 3)
        ratio = three / one
        results += [Result(f"1 gateway x 2 SIMs x {LATENCY * 1000:.0f} ms, {PER_NODE} messages", one, "msg/s",
                           "information: the physical limit is 40 msg/s", None),
                    Result(f"3 gateways x 2 SIMs on one PostgreSQL queue, {3 * PER_NODE} messages", three, "msg/s",
                           "information: the physical limit is 120 msg/s", None),
                    Result("3 gateways' throughput over 1 gateway's", ratio, "x", ">= 2.7 x", ratio >= 2.7)]
        for r in results:
            print(r.line(), flush=True)
        took = idle_wakeup(base, tmp)
        median = statistics.median(took) * 1000
        r = Result(f"new alert -> first send on a node idle for {IDLE_SECONDS:.0f} s (LISTEN/NOTIFY), median of "
                   f"{WAKEUPS}; worst {max(took) * 1000:.0f} ms", median, "ms", "<= 100 ms", median <= 100)
        print(r.line(), flush=True)
        results.append(r)
    return 0 if all(r.ok is not False for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
