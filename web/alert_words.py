"""An alert text's, a template's or an approval's refusal worded in the page language.

The store names the problem (model.TextProblem) and its values; the words live here, where Flask-Babel
is, so the store, the API and the CLI stay English and Flask-free (as web/import_words.py does for members)."""
from __future__ import annotations

from collections.abc import Callable

from flask_babel import gettext as _

from gatewayd.errors import InputError
from gatewayd.model import TextProblem


def _local(at: object) -> str:
    # The page's one UTC -> [dispatch].timezone conversion (imported here: web.alerts imports this module).
    from .alerts import localtime
    return localtime(at).strftime("%Y-%m-%d %H:%M %Z")


# A function per problem, not a string, so gettext runs in the request's language.
_REASONS: dict[TextProblem, Callable[[dict], str]] = {
    TextProblem.PLACEHOLDER_LEFT: lambda p: _("The text still holds the placeholder [%(slot)s]: replace it or remove "
                                              "the brackets.", **p),
    TextProblem.TEXT_TOO_LONG: lambda p: _("%(n)s characters; at most %(max)s. Shorten the text.", **p),
    TextProblem.TEXT_NUL: lambda p: _("The text holds a NUL character; type it again."),
    TextProblem.TEXT_INVISIBLE: lambda p: _("The text holds only invisible characters; write a text people can "
                                            "read."),
    TextProblem.CATEGORY_UNKNOWN: lambda p: _("Choose a category."),
    TextProblem.TITLE_LENGTH: lambda p: _("The title needs 1 to %(max)s characters.", **p),
    TextProblem.TEMPLATE_NO_TEXT: lambda p: _("A template needs a text in at least one language."),
    TextProblem.NOT_WAITING: lambda p: _("Alert %(id)s no longer waits for approval: someone else approved or "
                                         "cancelled it.", **p),
    TextProblem.EXPIRED_UNAPPROVED: lambda p: _("Alert %(id)s expired at %(at)s before it was approved; write a new "
                                                "one if it still matters.", id=p["id"], at=_local(p["at"])),
}


def text_reason(exc: InputError) -> str:
    """EXC's reason in the page language when the store named the problem, else its English."""
    try:
        problem = TextProblem(exc.problem)
    except ValueError:          # no problem named (or a member's RowProblem): the store's words
        return exc.reason
    return _REASONS[problem](exc.params)
