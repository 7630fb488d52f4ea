"""Replies from members: STOP/START, acknowledgements, reports for the police inbox."""
from __future__ import annotations

import enum
import logging
import unicodedata

from .channels.base import InboundText
from .phone import normalise, redact
from .selftest import is_selftest_text
from .store import Store

log = logging.getLogger("gatewayd.inbound")


class ReplyKind(enum.StrEnum):
    STOP = "stop"
    START = "start"
    ACK = "ack"
    REPORT = "report"
    SELFTEST = "selftest"     # the box's own loopback proof; not for the inbox
    CALLBACK = "callback"     # a call to the box's callback line (one row per alert it heard)


# Keywords in nl, fr, de, en. Matched on the whole (trimmed, accent-folded) text.
_KEYWORDS = {
    ReplyKind.STOP: {"STOP", "UIT", "STOPPEN", "ARRET", "STOPP", "UNSUBSCRIBE"},
    ReplyKind.START: {"START", "AAN", "DEMARRER", "DEMARRAGE", "ANMELDEN"},
    ReplyKind.ACK: {"OK", "1", "JA", "OUI", "YES", "GOED", "BIEN RECU", "ERHALTEN"},
}

CONFIRMATIONS = {
    ReplyKind.STOP: {
        "nl": "U ontvangt geen berichten meer van het buurtinformatienetwerk. Stuur START om opnieuw in te schrijven.",
        "fr": "Vous ne recevrez plus de messages du réseau d'information de quartier. "
              "Envoyez START pour vous réinscrire.",
        "de": "Sie erhalten keine Nachrichten mehr vom Nachbarschaftsnetzwerk. Senden Sie START zum erneuten Anmelden.",
        "en": "You will no longer receive messages from the neighbourhood network. Send START to subscribe again.",
    },
    ReplyKind.START: {
        "nl": "U ontvangt opnieuw berichten van het buurtinformatienetwerk. Stuur STOP om uit te schrijven.",
        "fr": "Vous recevez de nouveau les messages du réseau d'information de quartier. Envoyez STOP pour arrêter.",
        "de": "Sie erhalten wieder Nachrichten vom Nachbarschaftsnetzwerk. Senden Sie STOP zum Abmelden.",
        "en": "You will receive messages from the neighbourhood network again. Send STOP to unsubscribe.",
    },
}


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(plain.upper().replace(".", " ").replace("!", " ").split())


def classify(text: str) -> ReplyKind:
    """What a reply means: 'stop', 'Arrêt', ' uit ' -> STOP; 'ok', '1', 'Oui' -> ACK; else REPORT."""
    folded = _fold(text)
    for kind, words in _KEYWORDS.items():
        if folded in words:
            return kind
    return ReplyKind.REPORT


def handle_reply(store: Store, event: InboundText, received_id: int | None = None) -> ReplyKind:
    """Act on one received text and file it; returns what it was taken for.

    RECEIVED_ID: the write-ahead row the text was stored in; marked processed with the
    reply's effects, in one transaction.
    """
    number = normalise(event.number)
    if is_selftest_text(event.text):
        store.file_reply(event.device, number, event.text, ReplyKind.SELFTEST.value, event.at, None, None,
                         received_id=received_id)
        return ReplyKind.SELFTEST
    kind = classify(event.text)
    member = store.member_by_number(number)
    latest = store.latest_alert_to(number)
    alert_id = latest[0] if latest else None
    opt_out = confirmation = ack = None
    if kind in (ReplyKind.STOP, ReplyKind.START) and member is not None:
        opt_out = kind is ReplyKind.STOP
        lang = member.language if member.language in CONFIRMATIONS[kind] else "nl"
        confirmation = (CONFIRMATIONS[kind][lang], lang)
    elif kind is ReplyKind.ACK and latest is not None:
        ack = latest[1]
    elif kind is not ReplyKind.REPORT:
        # A keyword from an unknown number, or an ack with nothing to acknowledge:
        # a person should see it.
        kind = ReplyKind.REPORT
    store.file_reply(event.device, number, event.text, kind.value, event.at, member.id if member else None,
                     alert_id, opt_out, confirmation, ack, received_id)
    log.info("reply from %s taken as %s", redact(number), kind.value)
    return kind
