"""The mapping from what AMI reported about a call to the dispatcher's Outcome."""
from gatewayd.channels.base import OutcomeKind
from gatewayd.channels.voice import CallFacts, classify


def answered(**kw) -> CallFacts:
    return CallFacts(originate="Success", reason=4, hung_up=True, cause=16, **kw)


def failed(reason: int, cause: int | None = None) -> CallFacts:
    return CallFacts(originate="Failure", reason=reason, cause=cause, hung_up=cause is not None)


def test_answered_and_played_is_delivered():
    assert classify(answered(played="SUCCESS")).kind is OutcomeKind.DELIVERED


def test_pressed_one_is_acknowledged():
    assert classify(answered(played="SUCCESS", digit="1")).kind is OutcomeKind.ACKNOWLEDGED


def test_other_digit_is_delivered_not_acknowledged():
    assert classify(answered(played="SUCCESS", digit="2")).kind is OutcomeKind.DELIVERED


def test_failed_playback_is_not_delivered_but_retried():
    out = classify(answered(played="FAILED"))
    assert out.kind is OutcomeKind.RETRY and "did not play" in out.detail


def test_answered_without_played_event_is_retried():
    # Hung up mid-message: the dialplan never reached the GatewaydPlayed event.
    out = classify(answered())
    assert out.kind is OutcomeKind.RETRY and "before the message finished" in out.detail


def test_busy_reason_is_retry():
    out = classify(failed(5, 17))
    assert (out.kind, out.detail) == (OutcomeKind.RETRY, "busy")


def test_ring_timeout_is_retry_no_answer():
    out = classify(failed(3))
    assert (out.kind, out.detail) == (OutcomeKind.RETRY, "no answer")


def test_congestion_reason_is_retry():
    out = classify(failed(8, 34))
    assert (out.kind, out.detail) == (OutcomeKind.RETRY, "congestion")


def test_unallocated_number_is_failed():
    out = classify(failed(1, 1))
    assert out.kind is OutcomeKind.FAILED and "unallocated" in out.detail


def test_invalid_number_format_is_failed():
    assert classify(failed(0, 28)).kind is OutcomeKind.FAILED


def test_busy_cause_without_busy_reason_is_retry():
    out = classify(failed(1, 17))
    assert out.kind is OutcomeKind.RETRY and out.detail.startswith("busy")


def test_no_user_response_cause_is_retry_no_answer():
    out = classify(failed(1, 18))
    assert out.kind is OutcomeKind.RETRY and out.detail.startswith("no answer")


def test_hangup_before_answer_with_normal_clearing_is_retry():
    assert classify(failed(1, 16)).kind is OutcomeKind.RETRY


def test_unknown_failure_is_retry_not_lost():
    assert classify(failed(0)).kind is OutcomeKind.RETRY


def test_link_lost_mid_call_is_device_down_maybe_sent():
    out = classify(CallFacts(originate="Success", reason=4, link_lost="AMI connection lost"))
    assert out.kind is OutcomeKind.DEVICE_DOWN and out.maybe_sent


def test_link_lost_before_any_answer_is_device_down_maybe_sent():
    out = classify(CallFacts(link_lost="Asterisk closed the AMI connection"))
    assert out.kind is OutcomeKind.DEVICE_DOWN and out.maybe_sent


def test_link_lost_after_message_played_still_counts_as_delivered():
    out = classify(CallFacts(originate="Success", reason=4, played="SUCCESS", link_lost="gone"))
    assert out.kind is OutcomeKind.DELIVERED
