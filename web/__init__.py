"""The police page: a Flask application factory and its blueprints.

`create_app(cfg, store)` builds the app; `web.server.serve(cfg)` runs it under
waitress. Every route but the login page, the language switch, static files and
the token-authenticated API requires a logged-in user (see `auth.require_login`).
"""
from __future__ import annotations

import logging
import secrets
from datetime import timedelta

from flask import Flask, g, request, session
from flask.sessions import SecureCookieSessionInterface
from flask_babel import Babel
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.routing import IntegerConverter

from gatewayd.config import Config
from gatewayd.phone import redact
from gatewayd.store import Store

LANGUAGES = ("nl", "fr", "en")
log = logging.getLogger("gatewayd.web")


def _open_store(cfg: Config) -> Store:
    from gatewayd.db import make_engine
    return Store(make_engine(cfg.database.url), cfg.dispatch)


def _select_locale() -> str:
    lang = session.get("lang")
    if lang in LANGUAGES:
        return lang
    return g.get("default_language", "nl")


def create_app(cfg: Config, store: Store | None = None) -> Flask:
    """The police page for CFG over STORE (opened from cfg.database.url when None).

    Builds the app only; the database (schema, seeded templates) is `gatewayd init-db`'s job."""
    app = Flask(__name__)
    configure_settings(app, cfg)
    app.extensions["gatewayd.cfg"] = cfg
    app.extensions["gatewayd.store"] = store or _open_store(cfg)
    configure_extensions(app)
    configure_blueprints(app)
    configure_templates(app, cfg)
    configure_hooks(app, cfg)
    configure_errorhandlers(app)
    return app


def configure_settings(app: Flask, cfg: Config) -> None:
    """Flask's settings: session cookie, CSRF, upload size, translations."""
    app.url_map.converters["int"] = _DbInt
    secret = cfg.web.secret_key
    if not secret:
        # Sessions would not survive a restart and differ between workers; say so.
        log.warning("[web].secret_key is empty: using a random key, logins end at restart")
        secret = secrets.token_hex(32)
    app.config.update(
        SECRET_KEY=secret,
        SESSION_COOKIE_NAME="gatewayd_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=cfg.web.secure_cookies,
        PERMANENT_SESSION_LIFETIME=timedelta(minutes=cfg.web.session_idle_minutes),   # idle limit
        WTF_CSRF_TIME_LIMIT=None,          # the token lives as long as the session
        WTF_CSRF_SSL_STRICT=cfg.web.secure_cookies,
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,  # a member CSV of ~40,000 rows
        BABEL_DEFAULT_LOCALE=cfg.web.default_language,
        BABEL_TRANSLATION_DIRECTORIES="translations",
        TEMPLATES_AUTO_RELOAD=False,
    )
    app.session_interface = _SessionInterface()


def configure_extensions(app: Flask) -> None:
    from .alerts import limit_compose_body
    app.before_request(limit_compose_body)     # before CSRFProtect's hook, which parses the form
    CSRFProtect(app)
    Babel(app, locale_selector=_select_locale)


def configure_blueprints(app: Flask) -> None:
    from . import admin, alerts, api, auth, inbox, members, ops
    for bp in (auth.bp, alerts.bp, members.bp, inbox.bp, admin.bp, api.bp, ops.bp):
        app.register_blueprint(bp)
    app.extensions["csrf"].exempt(api.bp)   # token-only: no cookie is ever accepted there


def configure_templates(app: Flask, cfg: Config) -> None:
    """Filters and globals every template may use."""
    from . import auth
    from .alerts import quota_text
    from .labels import template_globals as label_globals

    @app.context_processor
    def _drill_mode():
        # [dispatch] drill: every alert is a drill; every page says so (base.html).
        return {"drill_mode": cfg.dispatch.drill}

    app.jinja_env.filters["charname"] = _charname
    app.jinja_env.filters["redact"] = redact
    app.context_processor(auth.template_globals)
    app.jinja_env.globals.update(label_globals())
    app.jinja_env.globals["quota_text"] = quota_text


def configure_hooks(app: Flask, cfg: Config) -> None:
    """Before and after every request: language default, login, security headers."""
    from . import auth

    @app.before_request
    def _defaults():
        g.default_language = cfg.web.default_language

    app.before_request(auth.require_login)
    app.after_request(_security_headers)
    app.after_request(_hsts)


def configure_errorhandlers(app: Flask) -> None:
    """One page per error the user may meet; the API answers JSON."""
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(404, _not_found)
    app.register_error_handler(403, _forbidden)
    app.register_error_handler(413, _too_large)
    app.register_error_handler(500, _server_error)


def _error_page(title: str, message: str, status: int):
    from flask import render_template
    return render_template("error.html", title=title, message=message), status


def _csrf_error(exc):
    from flask_babel import gettext as _
    return _error_page(_("Form expired"), _("The form was refused (missing or expired security token). "
                                            "Go back, reload the page and try again."), 400)


def _not_found(exc):
    from flask_babel import gettext as _
    if request.path.startswith("/api/"):
        return {"error": "not found"}, 404
    return _error_page(_("Not found"), _("This page does not exist."), 404)


def _forbidden(exc):
    from flask_babel import gettext as _
    return _error_page(_("Not allowed"), _("Your role does not allow this."), 403)


def _too_large(exc):
    from flask_babel import gettext as _
    if request.path.startswith("/alerts/"):
        return _error_page(_("Text too long"), _("An alert text has at most 1000 characters. Shorten it."), 413)
    return _error_page(_("File too large"),
                       _("The upload is larger than 2 MB. Split the file and import it in parts."), 413)


def _server_error(exc):
    from flask_babel import gettext as _
    log.exception("error on %s", request.path)
    return _error_page(_("Something went wrong"),
                       _("Nothing was sent. Try again; if it persists, call the administrator."), 500)


class _DbInt(IntegerConverter):
    """<int:...> in URLs, capped at what the database can hold: /alerts/99999999999999999999 is a 404."""

    def __init__(self, url_map, fixed_digits=0, min=None, max=2**63 - 1, signed=False):  # noqa: A002
        super().__init__(url_map, fixed_digits, min, max, signed)


def _charname(ch: str) -> str:
    """A replaced character as the preview shows it: itself, or U+XXXX when invisible."""
    return ch if ch.isprintable() and not ch.isspace() else "U+%04X" % ord(ch)


def _security_headers(resp):
    """No framing, no sniffing, scripts only from ourselves."""
    resp.headers.setdefault("X-Frame-Options", "DENY")
    resp.headers.setdefault("X-Content-Type-Options", "nosniff")
    resp.headers.setdefault("Referrer-Policy", "same-origin")
    resp.headers.setdefault("Content-Security-Policy",
                            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                            "frame-ancestors 'none'; form-action 'self'")
    if request.endpoint and request.endpoint != "static":
        resp.headers.setdefault("Cache-Control", "no-store")
    return resp


def _hsts(resp):
    """Served over HTTPS (or configured as such): tell browsers to stay on it."""
    from flask import current_app
    if request.is_secure or current_app.config["SESSION_COOKIE_SECURE"]:
        resp.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return resp


class _SessionInterface(SecureCookieSessionInterface):
    """The session cookie is Secure on every HTTPS request, whatever [web].secure_cookies says:
    a cookie first set over HTTPS must never travel over plain HTTP."""

    def get_cookie_secure(self, app) -> bool:
        return bool(super().get_cookie_secure(app) or request.is_secure)


def get_store() -> Store:
    from flask import current_app
    return current_app.extensions["gatewayd.store"]


def get_cfg() -> Config:
    from flask import current_app
    return current_app.extensions["gatewayd.cfg"]
