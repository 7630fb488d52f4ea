"""A coordinator keeps their own members only: no number reaches, names or re-routes a member of
another network; a shared member's number, opt-out and active state are an admin's; STOP is final
(issue 11, point 1)."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from gatewayd.errors import InputError
from gatewayd.model import Member
from web import queries as Q

from .conftest import csrf_token, login_as, network_id
from .test_members import add_form, import_form

ZOE = "+32473998877"          # Zoë Zuid, in Zuidrand only (zone Zuid): not the coordinator's
KIM = "+32472111111"          # Kim Janssens, in Kerkwijk: the coordinator's
FOREIGN = "belongs to a member of another network; ask an admin"


def networks_of(world, phone) -> set[str]:
    return {n.name for n in Q.member(world, world.member_by_number(phone).id).networks}


def test_adding_another_networks_number_neither_attaches_nor_reveals(coordinator, world):
    zoe_id = world.member_by_number(ZOE).id
    resp = coordinator.post("/members/new", data=add_form(coordinator, world, phone="0473 99 88 77"))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and FOREIGN in html
    assert f"#{zoe_id}" not in html and "Zoë" not in html and "Zuidrand" not in html
    assert networks_of(world, ZOE) == {"Zuidrand"}


def test_renumbering_to_another_networks_number_is_refused_without_naming_them(coordinator, world):
    kim = world.member_by_number(KIM).id
    resp = coordinator.post(f"/members/{kim}", data=add_form(coordinator, world, phone=ZOE))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and FOREIGN in html and f"#{world.member_by_number(ZOE).id}" not in html
    assert world.member_by_number(KIM) is not None


def test_adding_a_number_already_in_ones_own_network_says_so(coordinator, world):
    resp = coordinator.post("/members/new", data=add_form(coordinator, world, phone=KIM))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "already a member of your networks" in html and FOREIGN not in html


def test_admin_still_learns_which_member_has_the_number(admin, world):
    resp = admin.post("/members/new", data=add_form(admin, world, phone=ZOE))
    assert f"#{world.member_by_number(ZOE).id}" in resp.get_data(as_text=True)


CSV_WITH_ZOE = "name,phone,channel,lang\nNieuw,0476 10 10 10,sms,nl\nOvergenomen,0473 99 88 77,sms,nl\n"


def test_import_preview_marks_another_networks_number_as_a_bad_row(coordinator, world):
    html = coordinator.post("/members/import", data=import_form(coordinator, world, CSV_WITH_ZOE)).get_data(
        as_text=True)
    assert "Line 3: 0473 99 88 77 belongs to a member of another network; ask an admin" in html and "Zoë" not in html


def test_import_of_another_networks_number_attaches_nothing(coordinator, world):
    resp = coordinator.post("/members/import", data=import_form(coordinator, world, CSV_WITH_ZOE, step="import"))
    assert resp.status_code == 400 and "belongs to a member of another network" in resp.get_data(as_text=True)
    assert networks_of(world, ZOE) == {"Zuidrand"} and world.member_by_number("+32476101010") is None


def test_import_skipping_bad_rows_still_leaves_the_foreign_member_alone(coordinator, world):
    coordinator.post("/members/import", data=import_form(coordinator, world, CSV_WITH_ZOE, step="import",
                                                         skip_bad="1"))
    assert networks_of(world, ZOE) == {"Zuidrand"}
    assert networks_of(world, "+32476101010") == {"Kerkwijk"}


def test_the_store_import_refuses_foreign_numbers_in_scope(world):
    from gatewayd.store import ImportFailed
    with pytest.raises(ImportFailed, match="another network"):
        world.import_members("Kerkwijk", CSV_WITH_ZOE, scope=(network_id(world, "Kerkwijk"),))


@pytest.fixture
def shared(world):
    """Kim is in Kerkwijk (the coordinator's) and in Zuidrand (not theirs)."""
    world.add_member("Zuidrand", "0472 11 11 11")
    return world.member_by_number(KIM).id


def test_renumbering_a_shared_member_is_for_admins(coordinator, world, shared):
    resp = coordinator.post(f"/members/{shared}", data=add_form(coordinator, world, phone="0476 12 12 12"))
    assert resp.status_code == 400 and "only an admin" in resp.get_data(as_text=True)
    assert world.member_by_number(KIM).id == shared


def test_opting_out_a_shared_member_is_for_admins(coordinator, world, shared):
    coordinator.post(f"/members/{shared}", data=add_form(coordinator, world, phone=KIM, opted_out="1"))
    assert world.member_by_number(KIM).opted_out is False


def test_deactivating_a_shared_member_is_for_admins(coordinator, world, shared):
    resp = coordinator.post(f"/members/{shared}/active", data={"csrf_token": csrf_token(coordinator), "active": "0"},
                            follow_redirects=True)
    assert world.member_by_number(KIM).active is True and "only an admin" in resp.get_data(as_text=True)


def test_admin_renumbers_a_shared_member(admin, world, shared):
    resp = admin.post(f"/members/{shared}", data=add_form(admin, world, phone="0476 12 12 12"))
    assert resp.status_code == 302 and world.member_by_number("+32476121212").id == shared


def test_a_shared_members_name_and_language_stay_editable(coordinator, world, shared):
    resp = coordinator.post(f"/members/{shared}", data=add_form(coordinator, world, phone=KIM, lang="fr"))
    assert resp.status_code == 302 and world.member_by_number(KIM).language == "fr"


@pytest.mark.parametrize("who", ["coord", "admin"])
def test_no_page_resubscribes_a_member_who_replied_stop(client, world, who):
    world.set_opt_out(KIM, True)
    login_as(client, world, who)
    kim = world.member_by_number(KIM).id
    assert 'id="opted_out" value="1" checked disabled' in client.get(f"/members/{kim}").get_data(as_text=True)
    form = add_form(client, world, phone=KIM)           # no opted_out box: what unticking would send
    client.post(f"/members/{kim}", data=form)
    client.post(f"/members/{kim}/active", data={"csrf_token": csrf_token(client), "active": "1"})
    assert world.member_by_number(KIM).opted_out is True


def test_the_page_store_refuses_to_undo_a_stop_even_for_admins(world):
    world.set_opt_out(KIM, True)
    with pytest.raises(InputError, match="START"):
        world.save_member(world.member_by_number(KIM).id, KIM, "Kim", "", "nl",
                          [network_id(world, "Kerkwijk")], None, opted_out=False)


def test_the_member_themselves_can_still_opt_in_by_start(world):
    world.set_opt_out(KIM, True)
    world.set_opt_out(KIM, False)                          # what the daemon does on START
    with world.session() as s:
        assert s.scalar(select(Member.opted_out).where(Member.phone == KIM)) is False
