"""HTTP API for other systems (web/openapi.yaml): token only, JSON in and out.

`Authorization: Bearer <token>`; a token limited to a zone may address only the
networks of that zone. Session cookies are ignored here, so CSRF cannot apply.
"""
from __future__ import annotations

import threading
from datetime import timedelta

from flask import Blueprint, jsonify, request
from sqlalchemy import select

from gatewayd.app import queue_alert
from gatewayd.errors import InputError, NotFound
from gatewayd.model import AlertChannel, AuditAction, AuditEntry, Network, alert_network, utcnow
from gatewayd.store import AlertRequest

from . import get_store, queries

bp = Blueprint("api", __name__, url_prefix="/api/v1")
IDEMPOTENCY_WINDOW = timedelta(hours=24)
# One process serves the page; this lock makes "look up the key, then enqueue" atomic within it.
_idempotency_lock = threading.Lock()


def _earlier_send(actor: str, key: str) -> int | None:
    """The alert ACTOR already queued with Idempotency-Key KEY in the last 24 h, if any.

    Kept in the audit log (detail.idempotency_key), which records every API send anyway; a send
    recorded before the upgrade to one spelling of audit actions counts too (a retry may span it).
    """
    since = utcnow() - IDEMPOTENCY_WINDOW
    with get_store().reading() as s:
        for detail in s.scalars(select(AuditEntry.detail).where(
                AuditEntry.actor == actor, AuditEntry.action.in_(AuditAction.ALERT_SEND.spellings),
                AuditEntry.at >= since)):
            if isinstance(detail, dict) and detail.get("idempotency_key") == key:
                return detail.get("alert_id")
    return None


def _error(status: int, message: str, field: str | None = None):
    body = {"error": message}
    if field:
        body["field"] = field
    return jsonify(body), status


def _token():
    auth = request.headers.get("Authorization", "")
    if not auth.lower().startswith("bearer "):
        return None
    return get_store().token_by_secret(auth[7:].strip())


def _zone_networks(zone: str) -> set[str] | None:
    if not zone:
        return None
    with get_store().reading() as s:
        return set(s.scalars(select(Network.name).where(Network.zone == zone)))


def _alert_covered_by_zone(alert_id: int, zone: str) -> bool:
    """Are all of the alert's networks in ZONE? A follow-up reaches every recipient of its parent."""
    if not zone:
        return True
    with get_store().reading() as s:
        zones = set(s.scalars(select(Network.zone).join(alert_network, alert_network.c.network_id == Network.id)
                              .where(alert_network.c.alert_id == alert_id)))
    return zones == {zone}


def _alert_in_zone(alert_id: int, zone: str) -> bool:
    if not zone:
        return True
    with get_store().reading() as s:
        return s.scalar(select(alert_network.c.alert_id).join(Network, Network.id == alert_network.c.network_id)
                        .where(alert_network.c.alert_id == alert_id, Network.zone == zone).limit(1)) is not None


@bp.post("/alerts")
def create_alert():
    """Queue an alert: {"networks": [...], "category", "text", "texts"?, "channel"?, "parent_id"?, "drill"?}."""
    token = _token()
    if token is None:
        return _error(401, "missing, unknown or revoked token")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _error(400, "expected a JSON object", "body")
    networks = body.get("networks", [])
    texts = body.get("texts", {}) or {}
    if not isinstance(networks, list) or not all(isinstance(n, str) for n in networks):
        return _error(400, "expected a list of network names", "networks")
    if not isinstance(texts, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in texts.items()):
        return _error(400, "expected an object language -> text", "texts")
    for key in ("category", "text", "channel"):
        if key in body and not isinstance(body[key], str):
            return _error(400, "expected a string", key)
    drill = body.get("drill", False)
    if not isinstance(drill, bool):
        return _error(400, "expected true or false", "drill")
    parent_id = body.get("parent_id")
    if parent_id is not None and (not isinstance(parent_id, int) or isinstance(parent_id, bool)
                                  or queries.to_int(parent_id) is None):
        return _error(400, "expected an alert id (an integer)", "parent_id")
    allowed = _zone_networks(token.zone)
    if allowed is not None:
        outside = [n for n in networks if n not in allowed]
        if outside:
            return _error(403, f"network {outside[0]!r} is outside this token's zone", "networks")
        if parent_id is not None and not _alert_in_zone(parent_id, token.zone):
            return _error(404, f"alert {parent_id} does not exist", "parent_id")
        if parent_id is not None and not _alert_covered_by_zone(parent_id, token.zone):
            return _error(403, f"alert {parent_id} also went to networks outside this token's zone; "
                               "a follow-up would reach them too", "parent_id")
    key = (request.headers.get("Idempotency-Key") or "").strip()
    if len(key) > 100:
        return _error(400, "longer than 100 characters", "Idempotency-Key")
    actor = f"api:{token.name}"
    req = AlertRequest(networks=tuple(networks), category=body.get("category", ""), text=body.get("text", ""),
                       texts=texts, channel=body.get("channel", AlertChannel.MEMBER.value), author=actor,
                       parent_id=parent_id, drill=drill)
    with _idempotency_lock:
        earlier = _earlier_send(actor, key) if key else None
        if earlier is not None:
            # A retry of a request that already went through (e.g. after a timeout): never send twice.
            return jsonify({"id": earlier, "replayed": True}), 200
        extra = {"via": "api", **({"idempotency_key": key} if key else {})}
        try:
            result = queue_alert(get_store(), req, request.remote_addr or "", **extra)
        except InputError as exc:
            return _error(400, exc.reason, exc.field)
        except NotFound as exc:
            return _error(404, str(exc), "parent_id" if exc.what == "alert" else "networks")
    return jsonify({"id": result.alert_id, "messages": result.messages, "skipped": result.skipped}), 201


@bp.get("/alerts/<int:id>")
def get_alert(id: int):  # noqa: A002  (named as in openapi.yaml)
    """{"id", "state", "category", "messages": {state: count}, ...}."""
    token = _token()
    if token is None:
        return _error(401, "missing, unknown or revoked token")
    if not _alert_in_zone(id, token.zone):
        return _error(404, f"alert {id} does not exist")
    try:
        return jsonify(get_store().alert_status(id))
    except NotFound:
        return _error(404, f"alert {id} does not exist")
