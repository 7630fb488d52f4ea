"""A tiny HTTP server that lets Asterisk fetch rendered speech.

Asterisk's Playback(http://...) goes through res_http_media_cache, which GETs
the URL and picks the format from the file extension. This server answers only
`GET|HEAD /audio/<name>` where <name> is an opaque rendered-audio name
(32 hex characters + ".wav", see `gatewayd.tts.is_audio_name`) that exists in
the cache directory. Nothing else is served: no listing, no other paths, so a
crafted name (`../`, `%2e%2e`, absolute paths) cannot reach any other file.
"""
from __future__ import annotations

import email.utils
import logging
import os
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from gatewayd.tts import is_audio_name

log = logging.getLogger(__name__)

PREFIX = "/audio/"


class AudioServerError(Exception):
    """The audio server could not start (address in use, bad listen value)."""


def parse_listen(listen: str) -> tuple[str, int]:
    """'127.0.0.1:8090' -> ('127.0.0.1', 8090); AudioServerError when malformed."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise AudioServerError(f"[asterisk].audio_listen: expected HOST:PORT, got {listen!r}")
    return host.strip("[]"), int(port)


class _Handler(BaseHTTPRequestHandler):
    server_version = "gatewayd-audio"
    sys_version = ""
    directory: Path   # set on the subclass built per server

    def do_GET(self) -> None:    # noqa: N802 (http.server naming)
        self._serve(body=True)

    def do_HEAD(self) -> None:   # noqa: N802
        self._serve(body=False)

    def _serve(self, body: bool) -> None:
        path = self.path.split("?", 1)[0]
        name = path[len(PREFIX):] if path.startswith(PREFIX) else ""
        # The name test alone rules out traversal: only [0-9a-f]{32}.wav passes.
        if not is_audio_name(name):
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        file = self.directory / name
        try:
            data = file.read_bytes()
            mtime = os.stat(file).st_mtime
        except OSError:
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "audio/wav")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Last-Modified", email.utils.formatdate(mtime, usegmt=True))
        # A name is a content hash: the file behind it never changes.
        self.send_header("Cache-Control", "max-age=86400")
        self.send_header("ETag", f'"{name[:-4]}"')
        self.end_headers()
        if body:
            self.wfile.write(data)

    def log_message(self, fmt: str, *args: Any) -> None:
        log.debug("audio %s - %s", self.address_string(), fmt % args)


class AudioServer:
    """Serves rendered audio from `directory` on `listen` (HOST:PORT; port 0 = any free port)."""

    def __init__(self, directory: str | Path, listen: str):
        self.directory = Path(directory)
        self.host, self.port = parse_listen(listen)
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Bind and serve on a daemon thread; AudioServerError if the address is unusable."""
        handler = type("AudioHandler", (_Handler,), {"directory": self.directory})
        try:
            self._httpd = ThreadingHTTPServer((self.host, self.port), handler)
        except OSError as exc:
            raise AudioServerError(f"cannot serve audio on {self.host}:{self.port}: {exc.strerror}; "
                                   f"change [asterisk].audio_listen") from None
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="gatewayd-audio",
                                        kwargs={"poll_interval": 0.2}, daemon=True)
        self._thread.start()

    def url(self, name: str, template: str = "") -> str:
        """URL Asterisk should fetch for `name`: the configured template, else this server."""
        if template:
            return template.replace("{file}", name)
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{PREFIX}{name}"

    def stop(self) -> None:
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
