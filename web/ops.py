"""/healthz and /metrics for the box's keeper and a Prometheus scraper.

No login (a scraper has none) and nothing personal: counts and device states only.
"""
from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from gatewayd.metrics import CONTENT_TYPE, healthz, render_metrics

bp = Blueprint("ops", __name__)


def _store():
    return current_app.extensions["gatewayd.store"]


@bp.get("/healthz")
def health():
    ok, body = healthz(_store())
    return jsonify(body), 200 if ok else 503


@bp.get("/metrics")
def metrics():
    return Response(render_metrics(_store()), mimetype=CONTENT_TYPE)
