"""vocabulary.py: the domain's words as str Enums, their serving order, final states and audit spellings."""
from __future__ import annotations

import enum
import json

import pytest

from gatewayd.vocabulary import (
    CATEGORIES_OFFERED,
    DONE_STATES,
    TERMINAL_STATES,
    AuditAction,
    Category,
    MessageState,
)


def test_a_member_is_its_value_for_comparison_json_and_joining():
    """What the database and the API hand back is a plain string: it must meet the member as equal."""
    assert Category.URGENT == "urgent" and "sent" == MessageState.SENT
    assert {"urgent": 1}[Category.URGENT] == 1                     # a dict keyed by values finds a member
    assert json.dumps({"category": Category.PREVENTION}) == '{"category": "prevention"}'
    assert ", ".join(Category) == "urgent, feedback, prevention"


def _every_member():
    import gatewayd.vocabulary as vocabulary
    for value in vars(vocabulary).values():
        if isinstance(value, type) and issubclass(value, enum.Enum) and value.__module__ == vocabulary.__name__:
            yield from value


@pytest.mark.parametrize("member", list(_every_member()), ids=repr)
def test_a_member_reads_as_its_value_in_text(member):
    """A name built as f"max_attempts_{category}" or a page printing a state must read 'urgent', not
    'Category.URGENT' (what Python 3.11+ gives for a (str, Enum) member)."""
    assert f"{member}" == str(member) == member.value
    assert "{}".format(member) == "%s" % member == member.value


def test_urgent_is_served_before_feedback_before_prevention():
    assert sorted(Category, key=lambda c: c.priority, reverse=True) == [
        Category.URGENT, Category.FEEDBACK, Category.PREVENTION]


@pytest.mark.parametrize("category", list(Category))
def test_a_priority_names_its_category_back(category):
    assert Category.of_priority(category.priority) is category


def test_an_unknown_priority_names_no_category():
    assert Category.of_priority(0) is None and Category.of_priority(99) is None


def test_every_category_is_offered_once():
    assert sorted(CATEGORIES_OFFERED) == sorted(Category) and len(set(CATEGORIES_OFFERED)) == len(CATEGORIES_OFFERED)


def test_terminal_states_end_a_message_and_sent_is_done_but_not_terminal():
    """`sent` may still become delivered (or failed) by a delivery report; the others wait for more."""
    assert {s for s in MessageState if s.terminal} == TERMINAL_STATES
    assert not MessageState.SENT.terminal and MessageState.SENT in DONE_STATES
    waiting = {MessageState.QUEUED, MessageState.SENDING, MessageState.RETRY}
    assert waiting.isdisjoint(DONE_STATES) and DONE_STATES | waiting == set(MessageState)


def test_an_audit_action_matches_its_spelling_from_before_there_was_one():
    assert AuditAction.ALERT_SEND.spellings == ("alert.send", "alert_send")
    assert AuditAction.USER_LOGOUT_EVERYWHERE.spellings == ("user.logout_everywhere", "user_logout_everywhere")
    assert AuditAction.LOGIN.spellings == ("login",)


def test_audit_actions_are_spelt_apart():
    """No two actions share a spelling, old or new: an audit row names exactly one."""
    spellings = [s for a in AuditAction for s in a.spellings]
    assert len(spellings) == len(set(spellings))
