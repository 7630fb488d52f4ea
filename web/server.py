"""Production server for the police page: waitress on [web].listen."""
from __future__ import annotations

import logging

from gatewayd.config import Config, ConfigError

log = logging.getLogger("gatewayd.web")


def parse_listen(listen: str) -> tuple[str, int]:
    """'127.0.0.1:8080' / '[::1]:8080' / ':8080' -> (host, port); ConfigError when malformed."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"[web].listen: expected HOST:PORT, got {listen!r}")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


def proxy_options(cfg: Config) -> dict:
    """Waitress settings for [web].trusted_proxy: believe X-Forwarded-For/-Proto from that one
    address only (one hop, the reverse proxy on the box), strip them from everyone else."""
    opts: dict = {"clear_untrusted_proxy_headers": True}
    if cfg.web.trusted_proxy:
        opts.update(trusted_proxy=cfg.web.trusted_proxy, trusted_proxy_count=1,
                    trusted_proxy_headers={"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"})
    return opts


def serve(cfg: Config) -> int:
    """Run the page until interrupted; returns the exit status."""
    from waitress import serve as waitress_serve

    from gatewayd.secret_key import require_strong

    from . import create_app
    require_strong(cfg.web.secret_key, cfg.source)   # a guessable key lets anyone forge an admin session
    host, port = parse_listen(cfg.web.listen)
    app = create_app(cfg)
    app.extensions["gatewayd.store"].check_schema()
    log.info("police page on http://%s:%d/", host, port)
    print(f"police page on http://{host}:{port}/", flush=True)
    # Waitress answers the page and the API; 8 threads cover a busy control room.
    waitress_serve(app, host=host, port=port, threads=8, ident="gatewayd", **proxy_options(cfg))
    return 0
