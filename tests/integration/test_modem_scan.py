"""`gatewayd modems scan` on ptys: several emulated modems at once, one silent port, two ports of
one stick, a PIN-locked SIM, a tty without a by-id name. It sends no SMS and enters no PIN."""
from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from dataclasses import replace

import pytest

from gatewayd.config import parse_config
from tests.emulators.modem import LTE_ONLY, NEEDS_CREG2, THREE_FIELD_CREG, WELL_BEHAVED, ModemEmulator

pytestmark = pytest.mark.timeout(120)

EC25_IMEI = "861536030196001"


@pytest.fixture
def ports(tmp_path):
    by_id, tty = tmp_path / "by-id", tmp_path / "tty"
    by_id.mkdir()
    tty.mkdir()
    specs = {
        by_id / "usb-Quectel_EC25-if01-port0": replace(WELL_BEHAVED, imei=EC25_IMEI),      # the GPS port: silent
        by_id / "usb-Quectel_EC25-if02-port0": replace(LTE_ONLY, imei=EC25_IMEI),
        by_id / "usb-Quectel_EC25-if03-port0": replace(LTE_ONLY, imei=EC25_IMEI),          # same modem again
        by_id / "usb-ZTE_MF833-if00-port0": replace(NEEDS_CREG2, imei="867520041234561", pin="2580"),
        tty / "ttyUSB7": replace(THREE_FIELD_CREG, imei="490154203237518", iccid="89320420000012345678"),
    }
    emus = {p.name: ModemEmulator(str(p), prof).start() for p, prof in specs.items()}
    emus["usb-Quectel_EC25-if01-port0"].freeze(600, reset_clears=False)
    yield by_id, tty, emus
    for e in emus.values():
        e.stop()


def run_scan(by_id, tty, *extra):
    return subprocess.run([sys.executable, "-m", "gatewayd", "modems", "scan", "--by-id", f"{by_id}/*",
                           "--tty", f"{tty}/ttyUSB*", "--timeout", "1", "--hilink-url", "", *extra],
                          capture_output=True, text=True, timeout=90, env={"PATH": "/usr/bin:/bin"})


def test_scan_reports_every_port(ports):
    by_id, tty, emus = ports
    out = run_scan(by_id, tty, "--json")
    assert out.returncode == 0, out.stderr
    found = {p["path"].rsplit("/", 1)[-1]: p for p in json.loads(out.stdout)["ports"]}
    assert set(found) == set(emus)
    silent = found["usb-Quectel_EC25-if01-port0"]
    assert not silent["answers"] and "no answer to AT" in silent["problem"] and not silent["use"]
    lte = found["usb-Quectel_EC25-if02-port0"]
    assert (lte["answers"], lte["manufacturer"], lte["model"], lte["imei"], lte["sim"]) == \
        (True, "Quectel", "EC25", EC25_IMEI, "READY")
    assert (lte["iccid"], lte["imsi"]) == ("8932*************91", "20601********90")
    assert lte["registration"] == {"cs": "not registered, not searching", "ps": "not registered, not searching",
                                   "eps": "registered, home network"}
    assert (lte["network"], lte["operator"], lte["signal"]) == ("registered", "Proximus", 21)
    assert found["ttyUSB7"]["registration"]["cs"] == "registered, home network"
    assert found["ttyUSB7"]["iccid"] == "8932**************78"
    zte = found["usb-ZTE_MF833-if00-port0"]
    assert zte["sim"] == "SIM PIN" and zte["imsi"] == ""      # no PIN entered: the IMSI stays locked


def test_scan_recommends_one_port_per_modem(ports):
    by_id, tty, emus = ports
    found = {p["path"].rsplit("/", 1)[-1]: p for p in json.loads(run_scan(by_id, tty, "--json").stdout)["ports"]}
    assert {n for n, p in found.items() if p["use"]} == {"usb-Quectel_EC25-if02-port0", "usb-ZTE_MF833-if00-port0",
                                                         "ttyUSB7"}
    assert "same modem" in found["usb-Quectel_EC25-if03-port0"]["note"]


def test_scan_prints_a_ready_config_block(ports):
    by_id, tty, emus = ports
    out = run_scan(by_id, tty)
    assert out.returncode == 0
    text = out.stdout
    assert "silent: no answer to AT" in text and "-> use this port" in text
    block = text.split("survives re-plugging):\n", 1)[1]
    cfg = parse_config(tomllib.loads(block), "scan output")
    assert [m.port for m in cfg.modems] == [str(by_id / "usb-Quectel_EC25-if02-port0"),
                                           str(by_id / "usb-ZTE_MF833-if00-port0"), str(tty / "ttyUSB7")]
    assert "the SIM asks for a PIN" in text


def test_scan_sends_no_sms_enters_no_pin_resets_nothing(ports):
    by_id, tty, emus = ports
    run_scan(by_id, tty)
    for e in emus.values():
        said = [c.upper() for c in e.commands]
        assert not [c for c in said if c.startswith(("AT+CMGS", "AT+CPIN=", "AT+CFUN", "AT+CMGD", "AT+CUSD"))]
        assert not e.sent


def test_scan_without_any_port_says_what_to_check(tmp_path):
    out = run_scan(tmp_path / "none", tmp_path / "none")
    assert out.returncode == 1 and "no serial ports found" in out.stdout and "HiLink" in out.stdout


def test_a_port_held_by_gatewayd_shows_as_in_use(ports):
    from gatewayd.channels.modem import ModemChannel
    from gatewayd.config import ModemConfig, SmsConfig
    from tests.fixtures.modem import Sink
    by_id, tty, emus = ports
    held = ModemChannel(ModemConfig(name="m", port=emus["ttyUSB7"].port, command_timeout=3.0), SmsConfig())
    held.open(Sink())
    try:
        found = {p["path"].rsplit("/", 1)[-1]: p for p in json.loads(run_scan(by_id, tty, "--json").stdout)["ports"]}
    finally:
        held.close()
    assert not found["ttyUSB7"]["answers"] and "in use" in found["ttyUSB7"]["problem"]


def test_scan_finds_a_hilink_dongle_and_prints_its_block(tmp_path):
    from tests.emulators.hilink import HilinkEmulator
    dongle = HilinkEmulator().start()
    url = dongle.url
    try:
        out = run_scan(tmp_path / "none", tmp_path / "none", "--hilink-url", url)
    finally:
        dongle.stop()
    assert out.returncode == 0 and f"HiLink dongle E3372h-320 answers at {url}" in out.stdout
    block = out.stdout.split("(not a serial port):\n", 1)[1].split("\n\n", 1)[0]
    cfg = parse_config(tomllib.loads(block), "scan output")
    assert (cfg.hilink[0].url, cfg.hilink[0].username) == (url, "admin")
    assert dongle.logins == 0 and not dongle.sent            # no login, nothing sent


def test_a_web_server_that_is_not_a_hilink_dongle_is_no_traceback(tmp_path):
    """Something else answers at the HiLink address (a home router's page, not XML): not a dongle."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Router(BaseHTTPRequestHandler):
        def do_GET(self):
            page = b"<!DOCTYPE html><html><head><meta charset=utf-8><title>Router</title></head><body><br></body>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Router)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        out = run_scan(tmp_path / "none", tmp_path / "none", "--hilink-url",
                       f"http://127.0.0.1:{server.server_address[1]}/")
    finally:
        server.shutdown()
        server.server_close()
    assert "Traceback" not in out.stderr and out.returncode == 1
    assert "HiLink dongle" not in out.stdout and "no serial ports found" in out.stdout


def test_a_slow_sim_command_does_not_hide_the_modem(tmp_path):
    """Right after power-up a SIM can take seconds to answer AT+CIMI. One optional command that
    times out must not end the probe (or shift every later answer by one): the port still
    answers, does PDU mode, and is the one to use."""
    from gatewayd import modemscan
    path = tmp_path / "usb-Quectel_EC25-if02-port0"
    emu = ModemEmulator(str(path), replace(LTE_ONLY, slow=("+CIMI",), slow_seconds=1.5)).start()
    try:
        reports = modemscan.scan(str(tmp_path / "usb-*"), (), timeout=1.0)
    finally:
        emu.stop()
    [r] = reports
    assert (r.answers, r.pdu_mode, r.use, r.imei, r.operator) == (True, True, True, LTE_ONLY.imei, "Proximus")
    assert r.registration["eps"] == "registered, home network" and r.signal == 21
    assert r.imsi == "" and "AT+CIMI" in r.problem
    assert "[[modems]]" in modemscan.config_blocks(reports)
