"""A page form's refusal (alert text, template, approval, user, network, API token) in the page language.

The store names the problem (model.FormProblem) and its values; the words live here, where Flask-Babel
is, so the store, the API and the CLI stay English and Flask-free (as web/import_words.py does for members)."""
from __future__ import annotations

from collections.abc import Callable

from flask_babel import gettext as _

from gatewayd.errors import InputError
from gatewayd.model import FormProblem


def _local(at: object) -> str:
    # The page's one UTC -> [dispatch].timezone conversion (imported here: web.alerts imports this module).
    from .alerts import localtime
    return localtime(at).strftime("%Y-%m-%d %H:%M %Z")


# A function per problem, not a string, so gettext runs in the request's language.
_REASONS: dict[FormProblem, Callable[[dict], str]] = {
    FormProblem.PLACEHOLDER_LEFT: lambda p: _("The text still holds the placeholder [%(slot)s]: replace it or remove "
                                              "the brackets.", **p),
    FormProblem.PLACEHOLDER_BRACKETS: lambda p: _("Write the placeholder as [%(slot)s]: only square brackets make a "
                                                  "field the dispatcher fills in.", **p),
    FormProblem.TEXT_TOO_LONG: lambda p: _("%(n)s characters; at most %(max)s. Shorten the text.", **p),
    FormProblem.TEXT_NUL: lambda p: _("The text holds a NUL character; type it again."),
    FormProblem.TEXT_INVISIBLE: lambda p: _("The text holds only invisible characters; write a text people can "
                                            "read."),
    FormProblem.CATEGORY_UNKNOWN: lambda p: _("Choose a category."),
    FormProblem.TITLE_LENGTH: lambda p: _("The title needs 1 to %(max)s characters.", **p),
    FormProblem.TEMPLATE_NO_TEXT: lambda p: _("A template needs a text in at least one language."),
    FormProblem.NOT_WAITING: lambda p: _("Alert %(id)s no longer waits for approval: someone else approved or "
                                         "cancelled it.", **p),
    FormProblem.EXPIRED_UNAPPROVED: lambda p: _("Alert %(id)s expired at %(at)s before it was approved; write a new "
                                                "one if it still matters.", id=p["id"], at=_local(p["at"])),
    FormProblem.NAME_LENGTH: lambda p: _("Use 1 to %(max)s characters.", **p),
    FormProblem.USERNAME_INVALID: lambda p: _("Use 1 to 80 letters, digits, “.”, “-” or “_” (no spaces)."),
    FormProblem.USER_EXISTS: lambda p: _("A user “%(name)s” already exists.", **p),
    FormProblem.PASSWORD_SHORT: lambda p: _("At least %(min)s characters.", **p),
    FormProblem.ROLE_UNKNOWN: lambda p: _("Choose a role."),
    FormProblem.NETWORK_NAME_MISSING: lambda p: _("Give the network a name."),
    FormProblem.NETWORK_EXISTS: lambda p: _("A network “%(name)s” already exists.", **p),
    FormProblem.TOO_LONG: lambda p: _("At most %(max)s characters.", **p),
}


def form_reason(exc: InputError) -> str:
    """EXC's reason in the page language when the store named the problem, else its English."""
    try:
        problem = FormProblem(exc.problem or "")
    except ValueError:          # no problem named (or a member's RowProblem): the store's words
        return exc.reason
    return _REASONS[problem](exc.params)
