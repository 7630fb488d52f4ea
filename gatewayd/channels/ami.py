"""AMI, Asterisk's manager protocol: the one adapter over the `asterisk-ami` library.

No other module imports `asterisk.ami`. The library is pinned (pyproject) to the
version whose private parts `_SafeClient` uses (`_address`, `_port`, `_socket`,
`_thread`, `finished`, `_ami_version`, `listen`, `send`, FutureResponse `_timeout`);
tests/unit/test_ami_library_contract.py fails, naming what moved, if an upgrade
changes them. Why they are touched: the library keeps a 3 s timeout on the socket
its reader blocks on (an idle link would drop every 3 s), writes with send()
without a lock (concurrent calls could interleave), puts values on the wire
unchecked (a CR/LF would inject AMI headers), and an exception in a listener ends
its reader thread.
"""
from __future__ import annotations

import logging
import socket
import threading
import uuid
from typing import Any, Callable

from asterisk.ami import Action, AMIClient

from gatewayd.config import AsteriskConfig

log = logging.getLogger("gatewayd.channels.voice")   # its messages are the voice channel's

ACTION_TIMEOUT = 10.0        # seconds for Asterisk to answer one AMI action
LOGIN_EVENTS = "call,user,system"


# ---------------------------------------------------------------------------- errors
class AmiError(Exception):
    """AMI trouble; the message says what failed and what to check."""


class AmiConnectError(AmiError):
    """Asterisk's manager port could not be reached or does not speak AMI."""


class AmiAuthError(AmiError):
    """Asterisk refused the AMI login (user name or secret, or a permit/deny rule)."""


class AmiValueError(AmiError, ValueError):
    """A value would break the AMI framing (CR, LF, NUL) and was not sent."""


def ami_value(value: object, variable: bool = False) -> str:
    """Return `value` as AMI header text, refusing anything that could inject headers.

    AMI is line framed: a CR or LF inside a value would end the header and let
    the rest (say "Action: Originate") be read as new headers. Such a value is
    refused, never cleaned up: a phone number or URL with a line break in it is
    wrong, and guessing what it should have been could dial the wrong person.
    Variable values also may not hold commas, because Asterisk splits a
    `Variable:` header on them.
    """
    text = str(value)
    if any(c in text for c in "\r\n\x00"):
        raise AmiValueError(f"refusing to send a value holding a line break over AMI: {text[:40]!r}")
    if variable and "," in text:
        raise AmiValueError(f"refusing a channel variable value holding a comma: {text[:40]!r}")
    return text


# ---------------------------------------------------------------------------- AMI wrapper
class _SafeClient(AMIClient):  # type: ignore[misc]  # the library has no type information
    """asterisk-ami's AMIClient with a blocking reader, locked sendall() and value checks."""

    def __init__(self, host: str, port: int, connect_timeout: float):
        super().__init__(address=host, port=port, timeout=ACTION_TIMEOUT)
        self._connect_timeout = connect_timeout
        self._send_lock = threading.Lock()

    def connect(self) -> None:
        try:
            sock = socket.create_connection((self._address, self._port), timeout=self._connect_timeout)
        except OSError as exc:
            raise AmiConnectError(f"cannot connect to Asterisk AMI at {self._address}:{self._port}: "
                                  f"{exc.strerror or exc}; is Asterisk running, with manager.conf "
                                  f"enabled = yes on that port and bindaddr?") from None
        # The library would keep its 3 s timeout here, and its reader thread treats a
        # timeout as a disconnect: an idle link would drop every 3 s. Liveness is the
        # supervisor's Ping instead.
        sock.settimeout(None)
        self._socket = sock
        self.finished = threading.Event()
        self._thread = threading.Thread(target=self.listen, name="gatewayd-ami-reader", daemon=True)
        self._thread.start()

    def send_action(self, action: Action, callback: Callable[..., None] | None = None) -> Any:
        for key, value in action.keys.items():
            ami_value(key)
            ami_value(value)
        for key, value in action.variables.items():
            ami_value(key, variable=True)
            ami_value(value, variable=True)
        ami_value(action.name)
        return super().send_action(action, callback)

    def disconnect(self) -> None:
        # The library only close()s, which does not wake a reader blocked in recv()
        # on Linux; shutdown() does, so the join below is quick.
        if self.finished is not None:
            self.finished.set()
        sock = self._socket
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(2.0)

    def send(self, pack: object) -> None:
        data = (str(pack) + "\r\n").encode(self.encoding)
        with self._send_lock:
            self._socket.sendall(data)

    @property
    def version(self) -> str | None:
        return str(self._ami_version) if self._ami_version is not None else None


class AmiLink:
    """One logged-in AMI connection; events and the drop are reported to callbacks."""

    def __init__(self, cfg: AsteriskConfig, on_event: Callable[[Any], None],
                 on_down: Callable[[AmiLink, str], None], connect_timeout: float = 5.0):
        self.cfg = cfg
        self._on_event = on_event
        self._on_down = on_down
        self._client = _SafeClient(cfg.host, cfg.port, connect_timeout)
        self._closing = False
        self._down_reported = False
        self._lock = threading.Lock()
        self.connected = False

    def login(self) -> None:
        """Connect and log in; AmiConnectError / AmiAuthError say what is wrong."""
        c = self._client
        c.add_event_listener(self._event)
        c.add_listener(on_disconnect=self._disconnected)
        c.connect()
        try:
            action = Action("Login", {"Username": ami_value(self.cfg.username),
                                      "Secret": ami_value(self.cfg.secret), "Events": LOGIN_EVENTS})
            resp = c.send_action(action).response
        except OSError as exc:
            self.close()
            raise AmiConnectError(f"AMI at {self.cfg.host}:{self.cfg.port} dropped the connection "
                                  f"during login: {exc}") from None
        where = f"{self.cfg.host}:{self.cfg.port}"
        if resp is None:
            self.close()
            if c.version is None:
                raise AmiConnectError(f"{where} does not answer like Asterisk's manager (no "
                                      f"'Asterisk Call Manager' greeting); check [asterisk].host/port")
            raise AmiConnectError(f"Asterisk AMI at {where} did not answer the login within "
                                  f"{ACTION_TIMEOUT:.0f}s")
        if resp.is_error():
            self.close()
            msg = resp.keys.get("Message", "refused")
            raise AmiAuthError(f"Asterisk refused the AMI login of user '{self.cfg.username}' at {where}: "
                               f"{msg}; check [asterisk].username and secret against the [{self.cfg.username}] "
                               f"section of manager.conf (or manager.d/), and its permit/deny lines")
        self.connected = True

    @property
    def version(self) -> str | None:
        """The AMI version Asterisk greeted with (None before it did)."""
        return self._client.version

    def action(self, name: str, keys: dict[str, Any], variables: dict[str, Any] | None = None,
               timeout: float = ACTION_TIMEOUT) -> Any:
        """Send one action and wait for its Response (None on timeout).

        AmiValueError when a value is unsafe (nothing was sent); AmiError when the
        link is down or the write failed.
        """
        if not self.connected:
            raise AmiError("AMI link is down")
        act = Action(name, dict(keys), dict(variables or {}))
        act.keys.setdefault("ActionID", f"gwd-{uuid.uuid4().hex[:12]}")
        try:
            future = self._client.send_action(act)
        except AmiValueError:
            raise
        except OSError as exc:
            self._disconnected(error=exc)
            raise AmiError(f"AMI write failed: {exc}") from None
        future._timeout = timeout
        return future.response

    def _event(self, event: Any, source: Any = None) -> None:
        # An exception escaping here would end the library's reader thread.
        try:
            self._on_event(event)
        except Exception:
            log.exception("AMI event handler failed on %s", getattr(event, "name", "?"))

    def _disconnected(self, source: Any = None, error: BaseException | None = None) -> None:
        with self._lock:
            if self._down_reported:
                return
            self._down_reported = True
            self.connected = False
            closing = self._closing
        try:
            self._client.disconnect()
        except Exception:
            pass
        if not closing:
            reason = "Asterisk closed the AMI connection" if error is None or isinstance(error, StopIteration) \
                else f"AMI connection lost: {error}"
            self._on_down(self, reason)

    def drop(self, reason: str) -> None:
        """Give up on this link (e.g. no answer to Ping) and report it down."""
        with self._lock:
            if self._down_reported:
                return
            self._down_reported = True
            self.connected = False
        try:
            self._client.disconnect()
        except Exception:
            pass
        self._on_down(self, reason)

    def close(self) -> None:
        """Log off and disconnect without reporting a drop."""
        with self._lock:
            self._closing = True
            was = self.connected
            self.connected = False
        if was:
            try:
                self._client.send_action(Action("Logoff", {"ActionID": "gwd-logoff"}))
            except Exception:
                pass
        try:
            if self._client.finished is not None:
                self._client.disconnect()
        except Exception:
            pass
