"""Issue 7 end to end: the real `gatewayd run` daemon (a subprocess) against emulated
modems on ptys, checked on the emulators' wires and in the database.

* delivery reports past the 8-bit TP-MR wrap-around match the right message;
* a drill puts nothing on the wire, yet every message ends `sent`, the report
  lists every recipient, and the SIM's quota counters do not move;
* per-SIM quotas spread an alert over two SIMs and hold work back at the limit,
  unless the operator lets urgent alerts exceed it.

Waiting is done by reading the SQLite database (cheap); what is asserted about
the CLI is asked of the CLI.
"""
from __future__ import annotations

import json
import signal
import sqlite3
import time
from datetime import datetime, timedelta

import pytest

from tests.emulators.modem import ModemEmulator
from tests.fixtures.daemon import Gateway
from tests.fixtures.modem import emulators  # noqa: F401  (fixture)

pytestmark = pytest.mark.timeout(240)

TEXT = "Inbraak gemeld in de Kerkstraat. Sluit deuren en ramen; bel 101 bij verdachte situaties."


def number(i: int) -> str:
    return f"+32470{i:06d}"


def modem_toml(name: str, port: str, **extra) -> str:
    lines = ['[[modems]]', f'name = "{name}"', f'port = "{port}"', "sms_per_minute = 60000",
             "command_timeout = 3.0", "send_timeout = 10.0"] + [f"{k} = {v}" for k, v in extra.items()]
    return "\n".join(lines) + "\n"


def sql(g: Gateway, query: str, *args):
    con = sqlite3.connect(g.db, timeout=30)
    try:
        rows = con.execute(query, args).fetchall()
        con.commit()
        return rows
    finally:
        con.close()


def states(g: Gateway, alert_id: int) -> dict[str, int]:
    return dict(sql(g, "SELECT state, count(*) FROM message WHERE alert_id = ? GROUP BY state", alert_id))


def cmgs_on_wire(emu: ModemEmulator) -> int:
    return bytes(emu.wire_in).upper().count(b"AT+CMGS=")


@pytest.fixture
def gateways():
    made: list[Gateway] = []
    yield made.append
    for g in made:
        g.stop()


def gateway(tmp_path, devices_toml: str, members: int, extra_toml: str = "") -> Gateway:
    g = Gateway(tmp_path, devices_toml, extra_toml)
    g.cli("init-db")
    g.cli("network", "add", "N")
    lines = "\n".join(f"m{i},{number(i)},sms,nl" for i in range(members))
    (tmp_path / "m.csv").write_text("name,phone,channel,lang\n" + lines + "\n")
    g.cli("member", "import", "--network", "N", str(tmp_path / "m.csv"))
    return g


def send_alert(g: Gateway, network: str = "N", category: str = "urgent", *extra: str) -> int:
    return int(g.cli("alert", "send", "--network", network, "--category", category, "--text", TEXT,
                     *extra).stdout.split()[0])


def all_out(g: Gateway, alert_id: int, total: int):
    s = states(g, alert_id)
    return s if sum(s.values()) == total and set(s) <= {"sent", "delivered"} else None


def device(g: Gateway, name: str) -> dict:
    status = json.loads(g.cli("status", "--json").stdout)
    return next(d for d in status["devices"] if d["name"] == name)


# ====================================================================== TP-MR wrap-around

def test_status_reports_past_the_reference_wrap_match_the_right_message(tmp_path, emulators, gateways):
    emu = emulators("modem0")
    g = gateway(tmp_path, modem_toml("modem1", emu.port), 260)
    gateways(g)
    first = send_alert(g)
    g.start()
    g.wait_for(lambda: all_out(g, first, 260), timeout=150, every=0.5)
    # The next SMS gets the reference the member 256 sends ago got: make that the same member.
    sent = list(emu.sent)
    assert len(sent) == 260 and {s.mr for s in sent} == set(range(256))     # it did wrap
    x = sent[-256]
    g.cli("network", "add", "S")
    g.cli("member", "add", "--network", "S", "--phone", x.number)
    second = send_alert(g, "S")
    g.wait_for(lambda: all_out(g, second, 1), timeout=60, every=0.2)
    again = emu.sent[-1]
    assert (again.number, again.mr) == (x.number, x.mr)       # same number, same reference, twice

    by_key: dict[tuple[str, int], list[tuple[int, int]]] = {}
    for mid, num, ref, alert in sql(g, "SELECT id, number, reference, alert_id FROM message ORDER BY id"):
        by_key.setdefault((num, ref), []).append((mid, alert))
    # The database saw the references the modem gave (+CMGS: <mr>), send for send.
    assert sorted(by_key) == sorted({(s.number, s.mr) for s in emu.sent})
    [(old_x, _), (new_x, alert_x)] = by_key[(x.number, x.mr)]
    assert alert_x == second

    # References 1..4 went to two different numbers each (before and after the wrap).
    wrapped = [(sent[i], sent[i + 256]) for i in range(4)]
    assert all(a.mr == b.mr and a.number != b.number for a, b in wrapped)
    # One message whose report comes too late: sent 4 days ago as far as the database knows.
    aged = sent[10]
    [(aged_id, _)] = by_key[(aged.number, aged.mr)]
    [(stamp,)] = sql(g, "SELECT sent_at FROM message WHERE id = ?", aged_id)
    old = (datetime.fromisoformat(stamp) - timedelta(days=4)).isoformat(sep=" ", timespec="microseconds")
    sql(g, "UPDATE message SET sent_at = ? WHERE id = ?", old, aged_id)

    before = dict(sql(g, "SELECT id, state FROM message"))
    assert set(before.values()) == {"sent"}
    ids = lambda s: by_key[(s.number, s.mr)][0][0]   # noqa: E731  (the only message with that pair)
    expect = {new_x: "delivered"}                     # newest of the two (number, reference) twins
    emu.status_report(x.mr, x.number, 0x00)
    for a, b in wrapped[:2]:                          # both sides of a wrapped reference
        emu.status_report(a.mr, a.number, 0x00)
        emu.status_report(b.mr, b.number, 0x00)
        expect[ids(a)] = expect[ids(b)] = "delivered"
    a, b = wrapped[2]
    emu.status_report(b.mr, b.number, 0x41)           # permanent failure, after the wrap only
    expect[ids(b)] = "failed"
    emu.status_report(wrapped[3][0].mr, "+32499000001", 0x00)   # a wrapped reference, nobody's number
    emu.status_report(aged.mr, aged.number, 0x00)     # outside the window
    emu.status_report(x.mr + 100, x.number, 0x00)     # the right number, a reference it never had
    sentinel = sent[20]
    emu.status_report(sentinel.mr, sentinel.number, 0x00)   # reports are applied in order: this one last
    expect[ids(sentinel)] = "delivered"

    g.wait_for(lambda: dict(sql(g, "SELECT id, state FROM message WHERE id = ?", ids(sentinel))) ==
               {ids(sentinel): "delivered"}, timeout=60, every=0.2)
    time.sleep(1.5)           # unmatched reports are retried for a while: they must still match nothing
    after = dict(sql(g, "SELECT id, state FROM message"))
    changed = {mid: st for mid, st in after.items() if st != before[mid]}
    assert changed == expect
    assert after[old_x] == "sent" and after[aged_id] == "sent"
    [(reason,)] = sql(g, "SELECT reason FROM message WHERE id = ?", ids(b))
    assert reason.startswith("network report")


# ====================================================================== drill

def test_drill_puts_nothing_on_the_wire(tmp_path, emulators, gateways):
    emu = emulators("modem0")
    g = gateway(tmp_path, modem_toml("modem1", emu.port, quota_per_day=10), 6)
    gateways(g)
    drill = send_alert(g, "N", "urgent", "--drill")
    g.start()
    g.wait_for(lambda: states(g, drill) == {"sent": 6}, timeout=60, every=0.2)
    # The daemon did talk to this modem (set-up on the wire), only never to send.
    wire = bytes(emu.wire_in).upper()
    assert b"AT+CMGF=0" in wire
    assert b"CMGS" not in wire and emu.sent == []
    assert sql(g, "SELECT DISTINCT device FROM message WHERE alert_id = ?", drill) == [("modem1",)]

    status = g.status(drill)
    assert status["drill"] is True and status["messages"] == {"sent": 6}
    report = json.loads(g.cli("alert", "report", str(drill), "--json").stdout)
    assert report["drill"] is True
    assert sorted(r["number"] for r in report["recipients"]) == [number(i) for i in range(6)]
    assert all(r["state"] == "sent" and r["channel"] == "sms" for r in report["recipients"])
    assert report["estimated_seconds"] is not None
    # Nothing left the box, so nothing counts against the SIM's fair-use quota (counted
    # from the database by `status --json`, as the daemon does after a restart).
    q = device(g, "modem1")["quota"]
    assert (q["day"], q["month"], q["recipients_month"], q["exhausted"]) == (0, 0, 0, False)

    # The same daemon and modem, a real alert: now it is on the wire (the record works).
    real = send_alert(g)
    g.wait_for(lambda: all_out(g, real, 6), timeout=60, every=0.2)
    assert cmgs_on_wire(emu) == 6 and sorted(n for n, _ in emu.messages()) == [number(i) for i in range(6)]
    assert device(g, "modem1")["quota"]["day"] == 6


# ====================================================================== quotas

def test_quota_spreads_an_alert_and_holds_back_work_at_the_limit(tmp_path, emulators, gateways):
    a, b = emulators("modemA"), emulators("modemB")
    g = gateway(tmp_path, modem_toml("simA", a.port, quota_per_day=5) + modem_toml("simB", b.port, quota_per_day=15),
                20, "urgent_may_exceed_quota = false\n")
    gateways(g)
    first = send_alert(g)
    g.start()
    g.wait_for(lambda: all_out(g, first, 20), timeout=90, every=0.2)
    assert (cmgs_on_wire(a), cmgs_on_wire(b)) == (5, 15)          # counted on each modem's wire
    assert len(a.messages()) == 5 and len(b.messages()) == 15
    assert {n for n, _ in a.messages() + b.messages()} == {number(i) for i in range(20)}
    qa = device(g, "simA")["quota"]
    assert (qa["day"], qa["day_limit"], qa["exhausted"]) == (5, 5, True)
    assert device(g, "simB")["quota"]["exhausted"] is True

    # Both SIMs at their limit, urgent may not exceed it: a new alert waits.
    held = send_alert(g)
    time.sleep(3.0)           # long enough to send 20 SMS many times over on these modems
    assert states(g, held) == {"queued": 20}
    assert (cmgs_on_wire(a), cmgs_on_wire(b)) == (5, 15)
    assert g.kill(signal.SIGTERM) == 0

    # The operator allows urgent alerts past the quota: the urgent one goes out after a
    # restart (the counts came back from the database), a prevention alert still waits.
    g.conf.write_text(g.conf.read_text().replace("urgent_may_exceed_quota = false",
                                                 "urgent_may_exceed_quota = true"))
    waiting = send_alert(g, "N", "prevention")
    g.start()
    g.wait_for(lambda: all_out(g, held, 20), timeout=90, every=0.2)
    assert cmgs_on_wire(a) + cmgs_on_wire(b) == 40
    time.sleep(2.0)
    assert states(g, waiting) == {"queued": 20}
    assert cmgs_on_wire(a) + cmgs_on_wire(b) == 40
    qa = device(g, "simA")["quota"]
    assert qa["day"] == cmgs_on_wire(a) > 5 and qa["exhausted"] is True

