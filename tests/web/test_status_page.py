"""The alert status page: members counted (messages per channel beside), local time, cancel asks once."""
from __future__ import annotations

from .conftest import csrf_token
from .test_alerts import _send


def test_cancel_asks_once_with_what_stops_and_what_left(police, world):
    alert_id = _send(police, world)
    resp = police.post(f"/alerts/{alert_id}/cancel", data={"csrf_token": csrf_token(police)})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and 'id="confirm-cancel"' in html
    assert "2 messages that have not gone yet will be stopped." in html
    assert "0 messages already left and cannot be recalled." in html
    assert police.get(f"/alerts/{alert_id}/status.json").get_json()["counts"] == {"queued": 2}
    police.post(f"/alerts/{alert_id}/cancel", data={"csrf_token": csrf_token(police), "confirmed": "1"})
    assert police.get(f"/alerts/{alert_id}/status.json").get_json()["counts"] == {"cancelled": 2}


def test_cancel_is_the_last_action_not_the_first(police, world):
    html = police.get(f"/alerts/{_send(police, world)}").get_data(as_text=True)
    assert html.index('id="cancel"') > html.index('id="feedback"')


def test_status_counts_members_with_messages_per_channel(police, world):
    alert_id = _send(police, world, channel="member")
    data = police.get(f"/alerts/{alert_id}/status.json").get_json()
    assert (data["members"], data["members_reached"]) == (2, 0)
    assert data["channels"] == {"sms": {"total": 2, "reached": 0}}
    html = police.get(f"/alerts/{alert_id}").get_data(as_text=True)
    assert 'id="members-total">2<' in html and 'id="channel-sms">0 / 2<' in html


def test_times_are_in_the_boxs_time_zone(police, world):
    html = police.get(f"/alerts/{_send(police, world)}").get_data(as_text=True)
    assert " UTC</time>" not in html
    assert "CET</time>" in html or "CEST</time>" in html


def test_completion_is_announced(police, world):
    html = police.get(f"/alerts/{_send(police, world)}").get_data(as_text=True)
    live = html.split('id="status-live"')[1].split("</div>")[0]
    assert 'role="status"' in live.split(">")[0] and 'id="done-banner"' in live


def test_banner_and_members_line_agree_for_an_sms_and_voice_member(client, world):
    """Review 17: a member on SMS and voice whose SMS went out but whose call failed counts as
    reached ("1 / 1 members reached"); the banner must not say "not everyone was reached" beside it."""
    from gatewayd.channels.base import Outcome
    from gatewayd.store import AlertRequest

    from .conftest import login_as
    world.add_network("Oost")
    world.add_member("Oost", "0474 55 66 77", "Olga Oost", channel="sms+voice")
    alert_id = world.enqueue_alert(AlertRequest(networks=("Oost",), category="urgent", text="Verdachte auto",
                                                channel="member")).alert_id
    sms = world.claim("sms", "d1", "n")
    world.complete(sms, "d1", Outcome.sent(), )
    call = world.claim("voice", "v1", "n")
    world.complete(call, "v1", Outcome.failed("no answer"))
    world.finish_alerts()
    login_as(client, world, "admin")
    data = client.get(f"/alerts/{alert_id}/status.json").get_json()
    assert data["finished"] is True, data
    assert (data["members"], data["members_reached"]) == (1, 1)
    html = client.get(f"/alerts/{alert_id}").get_data(as_text=True)
    assert 'data-all-sent="1"' in html and data["all_sent"] is True


def test_a_voicemail_counts_the_same_in_the_messages_and_members_figures(client, world):
    """Review 17: a call that left a voicemail counted for "members reached" (and the banner) but not
    for the messages' "reached" beside it ("1 / 1 members reached", "Messages: 0 / 1 reached").
    A voicemail is a message left on the member's phone, like a sent SMS: reached, not heard
    (heard is "acknowledged", a 1 pressed, which escalation goes by)."""
    from gatewayd.channels.base import Outcome, OutcomeKind
    from gatewayd.model import MessageState
    from gatewayd.store import AlertRequest

    from .conftest import login_as
    world.add_network("Oost")
    world.add_member("Oost", "0474 55 66 77", "Olga Oost", channel="voice")
    alert_id = world.enqueue_alert(AlertRequest(networks=("Oost",), category="prevention", text="Ramen dicht",
                                                channel="member")).alert_id
    call = world.claim("voice", "v1", "n")
    world.complete(call, "v1", Outcome(OutcomeKind.VOICEMAIL, "answering machine"))
    world.finish_alerts()
    login_as(client, world, "admin")
    data = client.get(f"/alerts/{alert_id}/status.json").get_json()
    assert data["counts"] == {MessageState.VOICEMAIL.value: 1}, data
    assert (data["members_reached"], data["reached"], data["channels"]["voice"]["reached"]) == (1, 1, 1)
    assert data["all_sent"] is True


def test_recipients_channel_and_language_are_words_in_the_page_language(client, world):
    """Session 3: the recipients table showed the codes ("voice", "nl") where the members table words them."""
    from gatewayd.store import AlertRequest

    from .conftest import login_as
    world.add_network("Oost")
    world.add_member("Oost", "0474 55 66 77", "Olga Oost", channel="voice", lang="nl")
    alert_id = world.enqueue_alert(AlertRequest(networks=("Oost",), category="prevention", text="Ramen dicht",
                                                channel="member")).alert_id
    login_as(client, world, "admin")
    with client.session_transaction() as sess:
        sess["lang"] = "nl"
    table = client.get(f"/alerts/{alert_id}").get_data(as_text=True).split('id="recipients"')[1]
    assert 'data-label="Kanaal">spraakoproep</td>' in table and 'data-label="Taal">Nederlands</td>' in table
