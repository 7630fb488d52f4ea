"""CSV import and member-form problems worded in the page language.

The store names each refused row's, file's or member change's problem (model.RowProblem) and its
values; the words live here, where Flask-Babel is, so the store and the CLI stay English and Flask-free."""
from __future__ import annotations

from collections.abc import Callable

from flask_babel import gettext as _
from flask_babel import ngettext

from gatewayd.errors import InputError
from gatewayd.model import RowProblem
from gatewayd.store import RowError

# Each reads the row's params; a function, not a string, so gettext runs in the request's language.
_REASONS: dict[RowProblem, Callable[[dict], str]] = {
    RowProblem.PHONE_MISSING: lambda p: _("no number; give one such as 0470 12 34 56 or +32470123456"),
    RowProblem.PHONE_UNKNOWN_COUNTRY: lambda p: _("the number “%(number)s” has an unknown country code", **p),
    RowProblem.PHONE_NOT_A_NUMBER: lambda p: _("“%(number)s” is not a phone number", **p),
    RowProblem.PHONE_TOO_SHORT: lambda p: _("the number “%(number)s” is too short", **p),
    RowProblem.PHONE_TOO_LONG: lambda p: _("the number “%(number)s” is too long", **p),
    RowProblem.PHONE_INVALID: lambda p: _("the number “%(number)s” does not exist", **p),
    RowProblem.NAME_TOO_LONG: lambda p: _("the name is longer than %(max)s characters", **p),
    RowProblem.LANG_UNKNOWN: lambda p: _("the language “%(value)s” is not one of %(allowed)s", **p),
    RowProblem.CHANNEL_UNKNOWN: lambda p: _("the channel “%(value)s” is not one of %(allowed)s", **p),
    RowProblem.LANDLINE_NO_SMS: lambda p: _("%(number)s is a landline and cannot receive SMS; choose voice", **p),
    RowProblem.PHONE_REPEATED: lambda p: _("the number %(number)s is already on line %(first)s", **p),
    RowProblem.FOREIGN_NUMBER: lambda p: _("%(number)s belongs to a member of another network; ask an admin", **p),
    RowProblem.CSV_NO_PHONE_COLUMN: lambda p: _("The file has no “phone” column. The first line must name the "
                                                "columns: name,phone,channel,lang"),
    RowProblem.CSV_UNREADABLE: lambda p: _("This is not a readable CSV file (stuck at line %(line)s). Save it from "
                                           "your spreadsheet as “CSV (comma-separated)” and try again.", **p),
    RowProblem.NO_NETWORK: lambda p: _("Choose at least one network."),
    RowProblem.ALREADY_A_MEMBER: lambda p: _("%(number)s is already a member (#%(id)s)", **p),
    RowProblem.ALREADY_IN_YOUR_NETWORKS: lambda p: _("%(number)s is already a member of your networks; edit that "
                                                     "member", **p),
    RowProblem.ALREADY_IN_NETWORK: lambda p: _("%(number)s is already a member of %(network)s", **p),
    RowProblem.SHARED_MEMBER: lambda p: _("This member is also in networks outside yours: only an admin can change "
                                          "their number, opt-out or active state."),
    RowProblem.STOP_IS_FINAL: lambda p: _("The member replied STOP: only they can opt in again, by texting START. "
                                          "No page can re-subscribe them."),
}


def reason(error: RowError) -> str:
    """What is wrong with the row, in the page language."""
    return _REASONS[error.problem](error.params)


def input_reason(exc: InputError) -> str:
    """The member form's error in the page language when the store named the problem, else its English."""
    return _REASONS[RowProblem(exc.problem)](exc.params) if exc.problem else exc.reason


def row_error(error: RowError) -> str:
    """'Line 3: the number “12” is too short', in the page language."""
    return _("Line %(line)s: %(reason)s", line=error.line, reason=reason(error))


def nothing_imported(count: int) -> str:
    """The all-or-nothing refusal."""
    return ngettext("%(num)s row has an error, so nothing was imported. Fix it, or tick “Import the good rows "
                    "and skip the rows with errors”.",
                    "%(num)s rows have errors, so nothing was imported. Fix them, or tick “Import the good rows "
                    "and skip the rows with errors”.", count)
