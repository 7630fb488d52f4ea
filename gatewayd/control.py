"""The daemon's control socket: `gatewayd alert send` hands its request to the running daemon.

A new Python process that imports SQLAlchemy spends most of a second before it can write an
alert (0.45 s for the import alone on a small CPU). Through this UNIX socket the CLI only
starts Python, parses its arguments and the config, and the warm daemon validates and queues
the alert: an urgent alert is on the air a fraction of a second after the command is typed.
When no daemon answers, the CLI writes to the database itself, as before.

Protocol: one JSON object per line each way. The socket is created 0660, so only root and
the daemon's group can use it — the same people who can read the config and the database.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import socketserver
import stat
import threading
from typing import Any, Callable

from .errors import GatewaydError

log = logging.getLogger("gatewayd.control")


class ControlError(GatewaydError):
    """The daemon took a request but its answer was lost: the request may have been carried out."""

MAX_REQUEST = 64 * 1024


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        line = self.rfile.readline(MAX_REQUEST)
        try:
            message = json.loads(line)
            if not isinstance(message, dict):
                raise ValueError("not an object")
        except ValueError:
            answer = {"ok": False, "error": "control: not a JSON request"}
        else:
            answer = self.server.handle(message)  # type: ignore[attr-defined]  # set by ControlServer.start
        self.wfile.write(json.dumps(answer).encode() + b"\n")


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class ControlServer:
    """Serves HANDLE(request) -> answer on a UNIX socket at PATH until stop()."""

    def __init__(self, path: str, handle: Callable[[dict[str, Any]], dict[str, Any]]):
        self.path = path
        self.handle = handle
        self._server: _Server | None = None

    def start(self) -> bool:
        """Listen; False (logged) when the socket cannot be made, e.g. no such directory."""
        try:
            if os.path.exists(self.path) and stat.S_ISSOCK(os.stat(self.path).st_mode):
                os.unlink(self.path)          # left by a daemon that was killed
            server = _Server(self.path, _Handler)
            os.chmod(self.path, 0o660)
        except OSError as exc:
            log.warning("no control socket at %s (%s): `gatewayd alert send` will write to the database "
                        "itself", self.path, exc.strerror)
            return False
        server.handle = self._safe_handle  # type: ignore[attr-defined]  # the handler asks the server
        self._server = server
        threading.Thread(target=server.serve_forever, name="control", daemon=True).start()
        log.info("control socket at %s", self.path)
        return True

    def _safe_handle(self, message: dict[str, Any]) -> dict[str, Any]:
        try:
            return self.handle(message)
        except Exception:
            log.exception("control request failed")
            return {"ok": False, "error": "control: the daemon could not handle the request; see its log"}

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            try:
                os.unlink(self.path)
            except OSError:
                pass


def ask(path: str, message: dict[str, Any], timeout: float = 30.0) -> dict[str, Any] | None:
    """Send MESSAGE to the daemon at PATH; its answer, or None when no daemon listens there."""
    if not path or not os.path.exists(path):
        return None
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        try:
            s.connect(path)
        except OSError:
            return None                       # a stale socket file: the daemon is not running
        # From here on the daemon may have acted: never fall back (that could send twice).
        try:
            s.sendall(json.dumps(message).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            answer = json.loads(data)
        except (OSError, ValueError) as exc:
            raise ControlError(f"control: the daemon did not answer ({exc}); check `gatewayd alert status` "
                               "or the page before sending again") from None
    finally:
        s.close()
    if not isinstance(answer, dict):
        raise ControlError("control: the daemon's answer made no sense; check its log")
    return answer
