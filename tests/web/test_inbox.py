"""Inbox: police may reveal a reporter's full number to call back (audited); an unread count in the navigation."""
from __future__ import annotations

from sqlalchemy import select

from gatewayd.model import AuditAction, AuditEntry, utcnow

from .conftest import csrf_token

WITNESS = "+32479001403"


def report(world, text="Twee mannen achter nr 14"):
    return world.record_inbound("sim1", WITNESS, text, "report", utcnow(), None, None)


def test_police_reveal_a_reporters_full_number_and_it_is_audited(police, world):
    iid = report(world)
    html = police.get("/inbox").get_data(as_text=True)
    assert WITNESS not in html and f'id="reveal-{iid}"' in html
    resp = police.post(f"/inbox/{iid}/number", data={"csrf_token": csrf_token(police)})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and f'href="tel:{WITNESS}"' in html
    with world.session() as s:
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == AuditAction.INBOX_NUMBER_SHOWN.value))
    assert entry.actor == "agent" and entry.detail["inbound_id"] == iid


def test_coordinators_cannot_reveal_numbers(coordinator, world):
    iid = report(world)
    resp = coordinator.post(f"/inbox/{iid}/number", data={"csrf_token": csrf_token(coordinator)})
    assert resp.status_code in (403, 404)


def test_navigation_shows_the_open_inbox_count(police, world):
    report(world)
    report(world, "Auto met draaiende motor")
    html = police.get("/").get_data(as_text=True)
    assert 'id="inbox-unread">2<' in html


def test_no_badge_when_everything_is_handled(police):
    assert 'id="inbox-unread"' not in police.get("/").get_data(as_text=True)


def test_police_reveal_the_number_of_a_handled_report_on_the_all_view(police, world):
    """Review 17: a witness whose report was already marked handled must still be callable: the
    "Show number" button on "Show all" showed the open-only page without the number (audit written)."""
    iid = report(world)
    police.post(f"/inbox/{iid}/handled", data={"csrf_token": csrf_token(police), "handled": "1"})
    html = police.get("/inbox?all=1").get_data(as_text=True)
    import re
    action = re.search(rf'action="([^"]*/inbox/{iid}/number[^"]*)"', html).group(1).replace("&amp;", "&")
    resp = police.post(action, data={"csrf_token": csrf_token(police)})
    assert f'href="tel:{WITNESS}"' in resp.get_data(as_text=True)


def test_admins_see_numbers_masked_and_a_reveal_is_audited_as_for_police(admin, world):
    """Review 17: admins saw every reporter's number in full and nothing was recorded. They get the
    police flow: masked, "Show number" reveals one, and the audit log says who saw it."""
    iid = report(world)
    html = admin.get("/inbox").get_data(as_text=True)
    assert WITNESS not in html and f'id="reveal-{iid}"' in html
    resp = admin.post(f"/inbox/{iid}/number", data={"csrf_token": csrf_token(admin)})
    assert resp.status_code == 200 and f'href="tel:{WITNESS}"' in resp.get_data(as_text=True)
    with world.session() as s:
        entries = s.scalars(select(AuditEntry).where(AuditEntry.action == AuditAction.INBOX_NUMBER_SHOWN.value)).all()
    assert [(e.actor, e.detail["inbound_id"]) for e in entries] == [("admin", iid)]


def test_reopening_on_the_all_view_stays_on_the_all_view(police, world):
    """Review 17b: "Reopen" (or "Mark handled") on "Show all" or on page 2 went back to the open-only
    first page, so the officer lost the report they were reading."""
    iid = report(world)
    police.post(f"/inbox/{iid}/handled", data={"csrf_token": csrf_token(police), "handled": "1"})
    html = police.get("/inbox?all=1").get_data(as_text=True)
    import re
    action = re.search(rf'action="([^"]*/inbox/{iid}/handled[^"]*)"', html).group(1).replace("&amp;", "&")
    resp = police.post(action, data={"csrf_token": csrf_token(police), "handled": "0"})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/inbox?all=1")


def test_replies_the_box_acted_on_do_not_wait_in_the_inbox(police, world):
    """Review 17b: a STOP or START (the box opted the member out/in and confirmed it) is no work for the
    police, yet it counted as unread; a free-text report still does."""
    from gatewayd.channels.base import InboundText
    from gatewayd.inbound import handle_reply
    member = "+32470123456"           # An Peeters, Lindeknoppen
    handle_reply(world, InboundText("sim1", member, "STOP", utcnow(), "r1"))
    handle_reply(world, InboundText("sim1", member, "START", utcnow(), "r2"))
    handle_reply(world, InboundText("sim1", member, "Verdachte wagen in de Lindestraat", utcnow(), "r3"))
    html = police.get("/").get_data(as_text=True)
    assert 'id="inbox-unread">1<' in html
    everything = police.get("/inbox?all=1").get_data(as_text=True)
    assert "STOP" in everything and "START" in everything       # still listed, as handled by the box
