"""A Huawei HiLink dongle's web API (E3372h-320 style) on loopback, for tests.

What it implements, as the API is documented by the community and used by
`huawei-lte-api` (the client under test talks to it unchanged):

* Session and token handshake: `GET /` sets a `SessionID` cookie;
  `/api/webserver/token` is not supported (error 100002, as on the E3372h), so
  the client asks `/api/webserver/SesTokInfo` for `<SesInfo>` and `<TokInfo>`.
  Every POST must carry an unused `__RequestVerificationToken` issued to its
  session (else error 125002); each answer hands out a fresh one. Login
  (`password_type` 4) checks base64(sha256hex(user + base64(sha256hex(pw)) +
  token)), then gives a new session cookie and two tokens
  (`__RequestVerificationTokenone/two`). SMS endpoints need a login (100003).
* SMS: send-sms (recorded in `sent`), send-status (SucPhone/FailPhone), the
  inbox via sms-list and delete-sms, sms/config with UseSReport (status
  reports then arrive in the inbox as SmsType 7 or 8).
* Health: monitoring/status, device/signal, net/current-plmn.

Test API: `inject_sms`, `deliver_report`, `fail_next_sends`, `fail_next_deletes`, `lock_login`, `delay_next`, `refuse`, `garble`, `expire_sessions`
(as a dongle reboot does), `set_service`, `calls` (every request, in order)
and `on_delete` (a hook run when a message is deleted, to check ordering).
"""
from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

OK, NO_SUPPORT, NO_RIGHTS, SYSTEM_BUSY, CSRF = "OK", 100002, 100003, 100004, 125002
PASSWORD_WRONG, LOGIN_LOCKED = 108006, 108007


@dataclass
class SentText:
    number: str
    text: str
    text_mode: str
    ok: bool


@dataclass
class Inbox:
    index: int
    phone: str
    content: str
    sms_type: int = 1           # 1 single, 2 multipart, 7 delivered report, 8 failed report
    date: str = field(default_factory=lambda: datetime.now().strftime("%Y-%m-%d %H:%M:%S"))


class HilinkEmulator:
    """`start()` it, give `url` to the code under test, `stop()` it."""

    def __init__(self, username: str = "admin", password: str = "geheim", service: str = "2",
                 rssi: str = "-67dBm", operator: str = "Proximus"):
        self.username, self.password = username, password
        self.service, self.rssi, self.operator = service, rssi, operator
        self.sent: list[SentText] = []
        self.calls: list[tuple[str, str]] = []       # (method, path) of every request
        self.logins = 0
        self.use_s_report = False
        self.on_delete = None                        # callable(index) run before a delete takes effect
        self._sessions: dict[str, bool] = {}         # session id -> logged in
        self._tokens: dict[str, str] = {}            # unused token -> session id
        self._inbox: dict[int, Inbox] = {}
        self._next_index = 40000
        self._fail_next = 0
        self._fail_deletes = 0
        self._locked_until = 0.0                     # monotonic time the web login is locked until
        self._garbled: dict[str, int] = {}          # path -> answers still to give as an HTML page
        self._refusals: dict[str, list[int]] = {}   # path -> error codes to answer with, in turn
        self._delays: dict[str, float] = {}          # path -> seconds to wait before answering (once)
        self._last_token = ""
        self._status = {"Phone": "", "SucPhone": "", "FailPhone": "", "TotalCount": "0", "CurIndex": "0"}
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ lifecycle

    def start(self) -> "HilinkEmulator":
        emu = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                emu._handle(self, "GET")

            def do_POST(self):
                emu._handle(self, "POST")

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="hilink-emu", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/"

    # ------------------------------------------------------------ test API

    def inject_sms(self, phone: str, text: str) -> int:
        with self._lock:
            self._next_index += 1
            self._inbox[self._next_index] = Inbox(self._next_index, phone, text)
            return self._next_index

    def deliver_report(self, phone: str, delivered: bool = True) -> int:
        """The network's status report for an earlier send, filed in the inbox (needs UseSReport)."""
        with self._lock:
            self._next_index += 1
            self._inbox[self._next_index] = Inbox(self._next_index, phone, "", 7 if delivered else 8)
            return self._next_index

    def fail_next_sends(self, n: int = 1) -> None:
        with self._lock:
            self._fail_next += n

    def lock_login(self, seconds: float) -> None:
        """Lock the web login for SECONDS (108007), as after too many wrong passwords at the web page."""
        with self._lock:
            self._locked_until = time.monotonic() + seconds

    def fail_next_deletes(self, n: int = 1) -> None:
        """Answer the next N delete-sms with error 100004 (system busy): the message stays."""
        with self._lock:
            self._fail_deletes += n

    def delay_next(self, path: str, seconds: float) -> None:
        """Answer the next request for PATH only after SECONDS (having done what it asked)."""
        with self._lock:
            self._delays[path] = seconds

    def refuse(self, path: str, *codes: int) -> None:
        """Answer the next requests for PATH with these API error codes, one each (e.g. 100004,
        system busy, which a dongle says while it is busy sending)."""
        with self._lock:
            self._refusals.setdefault(path, []).extend(codes)

    def garble(self, path: str, n: int = 1) -> None:
        """Answer the next N requests for PATH with an HTML error page instead of XML, as a
        dongle's web server does while it restarts (or a proxy in between does)."""
        with self._lock:
            self._garbled[path] = self._garbled.get(path, 0) + n

    def expire_sessions(self) -> None:
        """Forget every session and token, as a rebooted dongle does."""
        with self._lock:
            self._sessions.clear()
            self._tokens.clear()

    def set_service(self, service: str) -> None:
        self.service = service

    @property
    def inbox(self) -> dict[int, Inbox]:
        with self._lock:
            return dict(self._inbox)

    # ------------------------------------------------------------ HTTP

    def _handle(self, req: BaseHTTPRequestHandler, method: str) -> None:
        length = int(req.headers.get("Content-Length") or 0)
        body = req.rfile.read(length) if length else b""
        path = req.path.split("?", 1)[0]
        with self._lock:
            self.calls.append((method, path))
            if self._refusals.get(path):
                return self._send(req, _error(self._refusals[path].pop(0)), None, {})
            if self._garbled.get(path, 0) > 0:
                self._garbled[path] -= 1
                return self._send(req, "<!DOCTYPE html><html><head><meta charset=utf-8></head>"
                                  "<body><h1>500 Internal Error</h1><br>restarting</body></html>",
                                  None, {})
            session = self._session_of(req)
            headers: dict[str, str] = {}
            new_session = None
            if session is None:
                session = new_session = self._new_session()
            if method == "POST":
                token = req.headers.get("__RequestVerificationToken", "")
                if self._tokens.get(token) != session:
                    return self._send(req, _error(CSRF), new_session, headers)
                del self._tokens[token]
                self._last_token = token
                headers["__RequestVerificationToken"] = self._issue(session)
            answer = self._route(method, path, body, session, headers)
            if isinstance(answer, tuple):           # (answer, new session) after a login
                answer, new_session = answer
            delay = self._delays.pop(path, 0.0)
        time.sleep(delay)
        self._send(req, answer, new_session, headers)

    def _send(self, req, xml: str, new_session: str | None, headers: dict[str, str]) -> None:
        data = xml.encode("utf-8")
        req.send_response(200)
        req.send_header("Content-Type", "text/html" if xml.startswith("<!DOCTYPE") else "text/xml")
        req.send_header("Content-Length", str(len(data)))
        if new_session:
            req.send_header("Set-Cookie", f"SessionID={new_session}; path=/; HttpOnly")
        for k, v in headers.items():
            req.send_header(k, v)
        req.end_headers()
        req.wfile.write(data)

    def _session_of(self, req) -> str | None:
        cookie = SimpleCookie(req.headers.get("Cookie", ""))
        sid = cookie["SessionID"].value if "SessionID" in cookie else None
        return sid if sid in self._sessions else None

    def _new_session(self) -> str:
        sid = secrets.token_hex(32)
        self._sessions[sid] = False
        return sid

    def _issue(self, session: str) -> str:
        token = secrets.token_hex(16)
        self._tokens[token] = session
        return token

    def _route(self, method: str, path: str, body: bytes, session: str, headers: dict[str, str]):
        if method == "GET" and path == "/":
            return "<!DOCTYPE html><html><head><title>HUAWEI</title></head><body></body></html>"
        routes = {
            ("GET", "/api/webserver/token"): lambda: _error(NO_SUPPORT),
            ("GET", "/api/webserver/SesTokInfo"): lambda: _response(
                {"SesInfo": f"SessionID={session}", "TokInfo": self._issue(session)}),
            ("GET", "/api/user/state-login"): lambda: _response(
                {"State": "0" if self._sessions[session] else "-1", "Username": self.username,
                 "password_type": "4", "firstlogin": "0"}),
            ("POST", "/api/user/login"): lambda: self._login(body, session, headers),
            ("POST", "/api/user/logout"): lambda: self._logout(session),
            ("GET", "/api/monitoring/status"): lambda: _response(
                {"ConnectionStatus": "901" if self.service == "2" else "902", "SignalIcon": "4",
                 "CurrentNetworkType": "19", "ServiceStatus": self.service, "SimStatus": "1"}),
            ("GET", "/api/device/basic_information"): lambda: _response(
                {"productfamily": "LTE", "classify": "hilink", "devicename": "E3372h-320", "SoftwareVersion":
                 "22.200.15.00.00"}),
            ("GET", "/api/device/signal"): lambda: _response({"rssi": self.rssi, "rsrp": "-95dBm", "sinr": "12dB"}),
            ("GET", "/api/net/current-plmn"): lambda: _response(
                {"State": "0", "FullName": self.operator, "ShortName": self.operator, "Numeric": "20601",
                 "Rat": "7"}),
        }
        sms_routes = {
            ("POST", "/api/sms/send-sms"): lambda: self._send_sms(body),
            ("GET", "/api/sms/send-status"): lambda: _response(dict(self._status)),
            ("POST", "/api/sms/sms-list"): lambda: self._list(),
            ("POST", "/api/sms/delete-sms"): lambda: self._delete(body),
            ("GET", "/api/sms/config"): lambda: _response(
                {"SaveMode": "0", "Validity": "10752", "Sca": "+32475161616",
                 "UseSReport": "1" if self.use_s_report else "0", "SendType": "1", "Priority": "0"}),
            ("POST", "/api/sms/config"): lambda: self._config(body),
        }
        if (method, path) in routes:
            return routes[(method, path)]()
        if (method, path) in sms_routes:
            return sms_routes[(method, path)]() if self._sessions[session] else _error(NO_RIGHTS)
        return _error(NO_SUPPORT)

    # ------------------------------------------------------------ endpoints

    def _login(self, body: bytes, session: str, headers: dict[str, str]):
        req = _fields(body)
        issued = headers.pop("__RequestVerificationToken")   # the login answers with a fresh pair instead
        self._tokens.pop(issued, None)
        used = self._last_token
        if time.monotonic() < self._locked_until:
            return _error(LOGIN_LOCKED)
        inner = base64.b64encode(hashlib.sha256(self.password.encode()).hexdigest().encode()).decode()
        want = base64.b64encode(hashlib.sha256((self.username + inner + used).encode()).hexdigest().encode())
        if req.get("Username") != self.username or req.get("Password", "").encode() != want:
            return _error(PASSWORD_WRONG)
        # A new session after login (no session fixation), and two tokens for it.
        self._sessions.pop(session, None)
        fresh = self._new_session()
        self._sessions[fresh] = True
        headers["__RequestVerificationTokenone"] = self._issue(fresh)
        headers["__RequestVerificationTokentwo"] = self._issue(fresh)
        self.logins += 1
        return _response(OK), fresh

    def _logout(self, session: str) -> str:
        self._sessions[session] = False
        return _response(OK)

    def _send_sms(self, body: bytes) -> str:
        root = ET.fromstring(body)
        phones = [p.text or "" for p in root.iter("Phone")]
        text = root.findtext("Content") or ""
        ok = self._fail_next <= 0
        self._fail_next = max(0, self._fail_next - 1)
        for phone in phones:
            self.sent.append(SentText(phone, text, root.findtext("Reserved") or "", ok))
        joined = ",".join(phones)
        self._status = {"Phone": "", "SucPhone": joined if ok else "", "FailPhone": "" if ok else joined,
                        "TotalCount": str(len(phones)), "CurIndex": str(len(phones))}
        return _response(OK)

    def _list(self) -> str:
        items = sorted(self._inbox.values(), key=lambda m: m.index)
        inner = "".join(
            f"<Message><Smstat>0</Smstat><Index>{m.index}</Index><Phone>{escape(m.phone)}</Phone>"
            f"<Content>{escape(m.content)}</Content><Date>{m.date}</Date><Sca></Sca><SaveType>4</SaveType>"
            f"<Priority>0</Priority><SmsType>{m.sms_type}</SmsType></Message>" for m in items)
        return (f'<?xml version="1.0" encoding="UTF-8"?><response><Count>{len(items)}</Count>'
                f"<Messages>{inner}</Messages></response>")

    def _delete(self, body: bytes) -> str:
        index = int(_fields(body).get("Index", "0"))
        if self._fail_deletes > 0:
            self._fail_deletes -= 1
            return _error(SYSTEM_BUSY)
        if self.on_delete is not None:
            self.on_delete(index)
        self._inbox.pop(index, None)
        return _response(OK)

    def _config(self, body: bytes) -> str:
        self.use_s_report = _fields(body).get("UseSReport") in ("1", "true", "True")
        return _response(OK)


def _fields(body: bytes) -> dict[str, str]:
    root = ET.fromstring(body)
    return {child.tag: (child.text or "") for child in root}


def _response(content) -> str:
    if isinstance(content, str):
        return f'<?xml version="1.0" encoding="UTF-8"?><response>{content}</response>'
    inner = "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in content.items())
    return f'<?xml version="1.0" encoding="UTF-8"?><response>{inner}</response>'


def _error(code: int) -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?><error><code>{code}</code><message></message></error>'
