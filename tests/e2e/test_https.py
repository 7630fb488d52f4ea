"""The page over HTTPS on the box, for real: scripts/tls-setup writes the nginx site, a self-signed
certificate and the [web] settings; Debian's nginx runs it on loopback in front of `gatewayd web`.
Then a TLS client and headless Chromium use it (issue 11: TLS, trusted proxy, sessions, redirects)."""
from __future__ import annotations

import http.client
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

import pytest
from selenium.webdriver.common.by import By
from sqlalchemy import select

from gatewayd.db import make_engine, migrate
from gatewayd.model import AuditAction, AuditEntry
from gatewayd.store import Store
from tests.web.conftest import PASSWORD, populate

from .test_police_page import wait

ROOT = Path(__file__).resolve().parents[2]
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
CLIENT_ADDR = "127.0.0.7"          # the "police PC": a loopback address of its own

pytestmark = pytest.mark.skipif(not os.path.exists(NGINX),
                                reason="nginx is missing: scripts/system-deps test installs it")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, what: str, seconds: float = 60, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited with {proc.returncode}")
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"{what} did not listen on {port} within {seconds} s")


class Box:
    def __init__(self, tmp: Path):
        self.tmp, self.https, self.http, self.page = tmp, free_port(), free_port(), free_port()
        self.conf, self.db = tmp / "gatewayd.toml", tmp / "gatewayd.db"
        self.cert = tmp / "tls" / "gatewayd.crt"
        self.procs: list[subprocess.Popen] = []

    def gatewayd(self, *argv):
        return [sys.executable, "-m", "gatewayd", "-c", str(self.conf), *argv]

    def context(self) -> ssl.SSLContext:
        """A client that trusts exactly the box's self-signed certificate and checks the name."""
        ctx = ssl.create_default_context(cafile=str(self.cert))
        return ctx

    def request(self, method: str, path: str, body: dict | None = None, headers: dict | None = None,
                cookie: str = "") -> http.client.HTTPResponse:
        conn = http.client.HTTPSConnection("127.0.0.1", self.https, context=self.context(), timeout=30,
                                           source_address=(CLIENT_ADDR, 0))
        hdrs = {**(headers or {})}
        if cookie:
            hdrs["Cookie"] = cookie
        data = None
        if body is not None:
            data = urlencode(body)
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
            hdrs.setdefault("Referer", f"https://127.0.0.1:{self.https}/login")
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        resp.body = resp.read().decode("utf-8", "replace")
        conn.close()
        return resp


@pytest.fixture(scope="module")
def box(tmp_path_factory):
    """One box for the module: making the certificate and starting nginx and the page take seconds."""
    yield from _box(tmp_path_factory, "127.0.0.1")


@pytest.fixture(scope="module")
def box_v6(tmp_path_factory):
    """The same box with the page on IPv6 loopback ([web].listen = "[::1]:PORT", which tls-setup accepts)."""
    yield from _box(tmp_path_factory, "::1")


def _box(tmp_path_factory, page_host: str):
    tmp_path = tmp_path_factory.mktemp("https-box")
    b = Box(tmp_path)
    listen_host = f"[{page_host}]" if ":" in page_host else page_host
    migrate(f"sqlite:///{b.db}")
    store = Store(make_engine(f"sqlite:///{b.db}"))
    populate(store)
    b.conf.write_text(f'[database]\nurl = "sqlite:///{b.db}"\n\n[dispatch]\nquiet_hours = ""\n\n'
                      f'[web]\nlisten = "{listen_host}:{b.page}"\ndefault_language = "en"\n', encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run(b.gatewayd("init-db"), capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert run.returncode == 0, run.stderr
    wrapper = tmp_path / "gatewayd"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH="{ROOT}" exec "{sys.executable}" -m gatewayd "$@"\n')
    wrapper.chmod(0o755)
    setup = subprocess.run(["bash", str(ROOT / "scripts" / "tls-setup"), "--config", str(b.conf), "--no-reload",
                            "--name", "gatewayd.test", "--tls-dir", str(tmp_path / "tls"),
                            "--site", str(tmp_path / "site.conf"), "--https-port", str(b.https),
                            "--http-port", str(b.http), "--gatewayd", str(wrapper)],
                           capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert setup.returncode == 0, setup.stdout + setup.stderr
    (tmp_path / "nginx.conf").write_text(
        "user root;\nworker_processes 1;\npid " + str(tmp_path / "nginx.pid") + ";\nevents {}\n"
        "http {\n  access_log off;\n  client_body_temp_path " + str(tmp_path / "body") + ";\n"
        "  proxy_temp_path " + str(tmp_path / "proxy") + ";\n  include " + str(tmp_path / "site.conf") + ";\n}\n")
    b.procs.append(subprocess.Popen([NGINX, "-e", str(tmp_path / "nginx-error.log"), "-p", str(tmp_path),
                                     "-c", str(tmp_path / "nginx.conf"), "-g", "daemon off;"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
    b.procs.append(subprocess.Popen(b.gatewayd("web"), env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                                    stderr=open(tmp_path / "web.log", "w")))
    try:
        wait_for_port(b.https, b.procs[0], "nginx")
        wait_for_port(b.page, b.procs[1], "gatewayd web", host=page_host)
        b.store = store
        yield b
    finally:
        for p in b.procs:
            p.terminate()
        for p in b.procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        store.engine.dispose()


def login(box: Box, username="agent", password=PASSWORD, next_path: str | None = None):
    first = box.request("GET", "/login")
    cookie = first.getheader("Set-Cookie").split(";", 1)[0]
    token = re.search(r'name="csrf_token" value="([^"]+)"', first.body).group(1)
    path = "/login" + (f"?{urlencode({'next': next_path})}" if next_path else "")
    return box.request("POST", path, {"csrf_token": token, "username": username, "password": password},
                       cookie=cookie)


def test_tls_setup_configures_the_page_for_https(box):
    from gatewayd.config import load_config
    web = load_config(box.conf).web
    assert web.secure_cookies is True and web.trusted_proxy == "127.0.0.1"
    assert oct((box.tmp / "tls" / "gatewayd.key").stat().st_mode & 0o777) == "0o600"


def test_the_page_answers_over_verified_tls_with_hsts(box):
    resp = box.request("GET", "/login")
    assert resp.status == 200 and "Strict-Transport-Security" in dict(resp.getheaders())


def test_plain_http_redirects_to_https(box):
    conn = http.client.HTTPConnection("127.0.0.1", box.http, timeout=30)
    conn.request("GET", "/alerts?x=1")
    resp = conn.getresponse()
    assert resp.status == 301 and resp.getheader("Location") == f"https://127.0.0.1:{box.https}/alerts?x=1"


def test_login_over_https_sets_a_secure_cookie_and_audits_the_real_client(box):
    resp = login(box)
    assert resp.status == 302 and resp.getheader("Location") == "/"
    cookie = resp.getheader("Set-Cookie")
    assert "Secure" in cookie and "HttpOnly" in cookie
    with box.store.session() as s:
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == AuditAction.LOGIN.value).order_by(AuditEntry.id.desc()))
    assert entry.ip == CLIENT_ADDR               # not nginx's 127.0.0.1


def test_a_forged_forwarded_for_is_not_believed(box):
    first = box.request("GET", "/login")
    cookie = first.getheader("Set-Cookie").split(";", 1)[0]
    token = re.search(r'name="csrf_token" value="([^"]+)"', first.body).group(1)
    box.request("POST", "/login", {"csrf_token": token, "username": "agent", "password": "wrong-password"},
                headers={"X-Forwarded-For": "198.51.100.66"}, cookie=cookie)
    with box.store.session() as s:
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == AuditAction.LOGIN_FAILED.value)
                         .order_by(AuditEntry.id.desc()))
    assert entry.ip == CLIENT_ADDR


def test_metrics_are_not_served_through_the_proxy(box):
    assert box.request("GET", "/metrics").status == 404
    health = box.request("GET", "/healthz")
    assert set(__import__("json").loads(health.body)) == {"status"}     # the real client is no scraper


def test_a_page_on_ipv6_loopback_still_sees_the_real_client(box_v6):
    """nginx reaches a page on [::1] from ::1: unless that is the trusted proxy, every client looks like
    loopback, so /healthz shows its details to anyone and one stranger's failures lock out every officer."""
    health = box_v6.request("GET", "/healthz")
    assert set(__import__("json").loads(health.body)) == {"status"}
    resp = login(box_v6)
    assert resp.status == 302
    with box_v6.store.session() as s:
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == AuditAction.LOGIN.value).order_by(AuditEntry.id.desc()))
    assert entry.ip == CLIENT_ADDR


def test_open_redirect_refused_over_https(box):
    resp = login(box, next_path="/\t/evil.example")
    assert resp.getheader("Location") == "/"


# ---------------------------------------------------------------------- in Chromium
@pytest.mark.browser
def test_chromium_logs_in_over_https_and_a_kept_cookie_dies_at_logout(box, browser_tls):
    base = f"https://127.0.0.1:{box.https}"
    browser_tls.get(f"{base}/login?next=/alerts")
    browser_tls.find_element(By.ID, "username").send_keys("agent")
    browser_tls.find_element(By.ID, "password").send_keys(PASSWORD)
    browser_tls.find_element(By.ID, "login").click()
    wait(browser_tls).until(lambda d: d.current_url == f"{base}/alerts")
    cookie = browser_tls.get_cookie("gatewayd_session")
    assert cookie["secure"] and cookie["httpOnly"]
    browser_tls.find_element(By.ID, "logout").click()
    wait(browser_tls).until(lambda d: "/login" in d.current_url)
    browser_tls.add_cookie({k: cookie[k] for k in ("name", "value", "path", "secure", "httpOnly")})
    browser_tls.get(f"{base}/alerts")                    # the cookie from before logout: dead
    assert "/login" in browser_tls.current_url


@pytest.fixture
def browser_tls(browser):
    """The e2e browser; the box's certificate is self-signed, so Chromium is told to accept it."""
    browser.execute_cdp_cmd("Security.setIgnoreCertificateErrors", {"ignore": True})
    return browser
