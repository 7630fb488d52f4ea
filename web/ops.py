"""/healthz and /metrics for the box's keeper and a Prometheus scraper.

No login (a scraper has none). What the box is doing (queue depth per priority,
device errors) is only for the callers [web] allows: a `metrics_token` Bearer
token, or an address in `metrics_allow` (loopback by default). Anyone else
learns from /healthz only whether the box is up, degraded or down.
"""
from __future__ import annotations

import ipaddress
import secrets

from flask import Blueprint, Response, current_app, jsonify, request

from gatewayd.metrics import CONTENT_TYPE, healthz, render_metrics

bp = Blueprint("ops", __name__)
UP, DEGRADED, DOWN = "up", "degraded", "down"


def _store():
    return current_app.extensions["gatewayd.store"]


def authorised() -> bool:
    """Does this caller carry the metrics token, or come from an allowed address?"""
    web = current_app.extensions["gatewayd.cfg"].web
    header = request.headers.get("Authorization", "")
    if web.metrics_token and header.lower().startswith("bearer ") and secrets.compare_digest(
            header[7:].strip().encode(), web.metrics_token.encode()):
        return True
    try:
        peer = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    return any(peer in ipaddress.ip_network(net, strict=False) for net in web.metrics_allow)


def status_word(ok: bool, report: dict) -> str:
    """up: all is well; degraded: it sends, but a device is down; down: it cannot send."""
    if not ok:
        return DOWN
    return DEGRADED if report.get("down") else UP


@bp.get("/healthz")
def health():
    ok, report = healthz(_store())
    word = status_word(ok, report)
    body = {"status": word, **report} if authorised() else {"status": word}
    return jsonify(body), 503 if word == DOWN else 200


@bp.get("/metrics")
def metrics():
    if not authorised():
        return Response("forbidden: /metrics needs [web].metrics_token or an address in [web].metrics_allow\n",
                        status=403, mimetype="text/plain")
    return Response(render_metrics(_store()), mimetype=CONTENT_TYPE)
