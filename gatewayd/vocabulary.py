"""The domain's words, as str Enums used directly everywhere (never spelled out as string literals).

A str Enum member compares equal to its value, so `row.state == MessageState.SENT` holds for a
state read from the database. StrEnum rather than (str, Enum): since Python 3.11 an f-string or
str() of a (str, Enum) member gives 'Category.URGENT', so a name built as f"max_{category}" or a
template printing a state would silently read the wrong thing; a StrEnum gives 'urgent'.
Kept free of SQLAlchemy: the CLI's fast path imports it.
"""
from __future__ import annotations

import enum


class Category(enum.StrEnum):
    URGENT = "urgent"
    FEEDBACK = "feedback"
    PREVENTION = "prevention"

    @property
    def priority(self) -> int:
        """Serving order: a higher number goes first."""
        return _PRIORITY[self]

    @classmethod
    def of_priority(cls, priority: int) -> "Category | None":
        """The category whose messages carry PRIORITY, or None (no such priority)."""
        return next((c for c, p in _PRIORITY.items() if p == priority), None)


_PRIORITY = {Category.URGENT: 3, Category.FEEDBACK: 2, Category.PREVENTION: 1}
# The order people are offered the categories in (forms, --help, error messages): most used first.
CATEGORIES_OFFERED = (Category.URGENT, Category.PREVENTION, Category.FEEDBACK)


class Language(enum.StrEnum):
    """The languages members read and hear alerts in (Belgium's three, and English)."""

    NL = "nl"
    FR = "fr"
    DE = "de"
    EN = "en"


class MemberChannel(enum.StrEnum):
    """How a member wants alerts: a landline can only take voice."""

    SMS = "sms"
    VOICE = "voice"
    SMS_VOICE = "sms+voice"


class AlertChannel(enum.StrEnum):
    """How an alert goes out: each member's own preference, or one channel for all."""

    MEMBER = "member"
    SMS = "sms"
    VOICE = "voice"


class MessageState(enum.StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    ACKNOWLEDGED = "acknowledged"
    VOICEMAIL = "voicemail"      # an answering machine took the call: a short message was left
    RETRY = "retry"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset({MessageState.DELIVERED, MessageState.ACKNOWLEDGED, MessageState.VOICEMAIL,
                             MessageState.FAILED, MessageState.EXPIRED, MessageState.CANCELLED})
# `sent` is final for dispatch (nothing more to do) though a delivery report may still move it on.
DONE_STATES = TERMINAL_STATES | {MessageState.SENT}


class AlertState(enum.StrEnum):
    PENDING_APPROVAL = "pending_approval"
    ACTIVE = "active"        # messages still to send
    DONE = "done"            # every message reached a final state
    CANCELLED = "cancelled"


class NodeState(enum.StrEnum):
    """A gateway as status and the page show it (derived from its heartbeat, not stored)."""

    RUNNING = "running"
    SILENT = "silent"          # no heartbeat for longer than its lease: others took its sends over
    STOPPED = "stopped"        # stopped on purpose
    NEVER_RAN = "never_ran"    # registered by init-db, not started yet
    UNKNOWN = "unknown"        # devices recorded under a node with no row


class Role(enum.StrEnum):
    POLICE = "police"
    COORDINATOR = "coordinator"
    ADMIN = "admin"


class AuditAction(enum.StrEnum):
    """What an audit entry records; one spelling whoever acts (CLI, page, API, daemon)."""

    ALERT_SEND = "alert.send"
    ALERT_CORRECT = "alert.correct"
    ALERT_CANCEL = "alert.cancel"
    ALERT_APPROVE = "alert.approve"
    NETWORK_ADD = "network.add"
    NETWORK_EDIT = "network.edit"
    MEMBER_ADD = "member.add"
    MEMBER_EDIT = "member.edit"
    MEMBER_ACTIVATE = "member.activate"
    MEMBER_DEACTIVATE = "member.deactivate"
    MEMBER_IMPORT = "member.import"
    MEMBER_EXPORT = "member.export"
    MEMBER_ERASE = "member.erase"
    USER_ADD = "user.add"
    USER_EDIT = "user.edit"
    USER_LOGOUT_EVERYWHERE = "user.logout_everywhere"
    TEMPLATE_EDIT = "template.edit"
    TOKEN_CREATE = "token.create"
    TOKEN_REVOKE = "token.revoke"
    INBOX_HANDLED = "inbox.handled"
    INBOX_REOPENED = "inbox.reopened"
    INBOX_NUMBER_SHOWN = "inbox.number_shown"
    LOGIN = "login"
    LOGIN_FAILED = "login.failed"
    LOGIN_REFUSED_LOCKED = "login.refused_locked"
    LOGIN_LOCKED = "login.locked"
    LOGOUT = "logout"
    DATABASE_RESTORE = "database.restore"
    RETENTION_PURGE = "retention.purge"
    CALLBACK = "callback"                  # someone phoned the box's callback line
    CALLBACK_CONFIRM = "callback.confirm"  # a member pressed 1 for an alert on the callback line
    NODE_TAKEOVER = "node.takeover"        # a node resolved a silent node's sends in flight

    @property
    def spellings(self) -> tuple[str, ...]:
        """This action as audit rows may hold it: the one spelling, and the page's and the API's
        (`alert_send`) from before there was one; a box upgraded from then keeps those rows."""
        earlier = self.value.replace(".", "_")
        return (self.value,) if earlier == self.value else (self.value, earlier)


class RowProblem(enum.StrEnum):
    """Why one member's fields (a CSV row, the member form), a member change or a whole CSV file were refused.

    The store stays free of Flask: it names the problem and its values, the page words it in the
    reader's language and the CLI prints the store's English."""

    PHONE_MISSING = "phone_missing"
    PHONE_UNKNOWN_COUNTRY = "phone_unknown_country"
    PHONE_NOT_A_NUMBER = "phone_not_a_number"
    PHONE_TOO_SHORT = "phone_too_short"
    PHONE_TOO_LONG = "phone_too_long"
    PHONE_INVALID = "phone_invalid"
    NAME_TOO_LONG = "name_too_long"
    LANG_UNKNOWN = "lang_unknown"
    CHANNEL_UNKNOWN = "channel_unknown"
    LANDLINE_NO_SMS = "landline_no_sms"
    PHONE_REPEATED = "phone_repeated"
    FOREIGN_NUMBER = "foreign_number"
    # The file as a whole (params: line for CSV_UNREADABLE).
    CSV_NO_PHONE_COLUMN = "csv_no_phone_column"
    CSV_UNREADABLE = "csv_unreadable"
    # The member form and (de)activation.
    NO_NETWORK = "no_network"
    ALREADY_A_MEMBER = "already_a_member"                    # an admin learns which (params: number, id)
    ALREADY_IN_YOUR_NETWORKS = "already_in_your_networks"
    ALREADY_IN_NETWORK = "already_in_network"                # params: number, network
    SHARED_MEMBER = "shared_member"
    STOP_IS_FINAL = "stop_is_final"


class FormProblem(enum.StrEnum):
    """Why an alert text, an alert template, an approval, a user, a network or an API token was refused
    (the page words it, the API and the CLI print the store's English; a member's is a RowProblem)."""

    PLACEHOLDER_LEFT = "placeholder_left"        # params: slot
    PLACEHOLDER_BRACKETS = "placeholder_brackets"  # a template's {straat} / <straat> (params: slot)
    TEXT_TOO_LONG = "text_too_long"              # params: n, max
    TEXT_NUL = "text_nul"
    TEXT_INVISIBLE = "text_invisible"
    CATEGORY_UNKNOWN = "category_unknown"
    TITLE_LENGTH = "title_length"                # params: max
    TEMPLATE_NO_TEXT = "template_no_text"
    NOT_WAITING = "not_waiting"                  # an approval: the alert no longer waits (params: id)
    EXPIRED_UNAPPROVED = "expired_unapproved"    # params: id, at (UTC datetime)
    NAME_LENGTH = "name_length"                  # a token's name (params: max)
    USERNAME_INVALID = "username_invalid"
    USER_EXISTS = "user_exists"                  # params: name
    PASSWORD_SHORT = "password_short"            # params: min
    ROLE_UNKNOWN = "role_unknown"
    NETWORK_NAME_MISSING = "network_name_missing"
    NETWORK_EXISTS = "network_exists"            # params: name
    TOO_LONG = "too_long"                        # a network's name or zone, a user's zone (params: max)


class ReceivedKind(enum.StrEnum):
    """What a device received and wrote ahead (gatewayd.model.ReceivedEvent)."""

    SMS = "sms"
    STATUS_REPORT = "status_report"


__all__ = ["CATEGORIES_OFFERED", "DONE_STATES", "TERMINAL_STATES", "AlertChannel", "AlertState", "AuditAction",
           "Category", "Language", "MemberChannel", "MessageState", "NodeState", "ReceivedKind", "Role",
           "RowProblem", "FormProblem"]
