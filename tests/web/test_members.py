"""Members and networks: add, edit, deactivate, CSV import with preview and per-row errors."""
from __future__ import annotations

from sqlalchemy import func, select

from gatewayd.model import AuditAction, AuditEntry, Member

from .conftest import csrf_token, login_as, network_id


def member_count(store) -> int:
    with store.session() as s:
        return s.scalar(select(func.count()).select_from(Member))


def add_form(client, world, **kw):
    data = {"csrf_token": csrf_token(client), "phone": "0476 55 44 33", "name": "Nieuw Lid", "channel": "",
            "lang": "nl", "networks": [str(network_id(world, "Kerkwijk"))]}
    data.update(kw)
    return data


def test_coordinator_adds_member_to_own_network(coordinator, world):
    resp = coordinator.post("/members/new", data=add_form(coordinator, world))
    assert resp.status_code == 302 and member_count(world) == 5


def test_member_add_is_audited(coordinator, world):
    coordinator.post("/members/new", data=add_form(coordinator, world))
    with world.session() as s:
        assert s.scalar(select(AuditEntry.actor).where(AuditEntry.action == AuditAction.MEMBER_ADD.value)) == "coord"


def test_bad_phone_is_a_form_error_naming_the_field(coordinator, world):
    resp = coordinator.post("/members/new", data=add_form(coordinator, world, phone="12ab"))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and 'id="error-phone"' in html and member_count(world) == 4


def test_bad_language_is_a_form_error(coordinator, world):
    resp = coordinator.post("/members/new", data=add_form(coordinator, world, lang="xx"))
    assert resp.status_code == 400 and 'id="error-lang"' in resp.get_data(as_text=True)


def test_landline_with_sms_is_refused(coordinator, world):
    resp = coordinator.post("/members/new", data=add_form(coordinator, world, phone="02 511 11 11", channel="sms"))
    assert resp.status_code == 400 and 'id="error-channel"' in resp.get_data(as_text=True)


def test_no_network_is_a_form_error(coordinator, world):
    resp = coordinator.post("/members/new", data=add_form(coordinator, world, networks=[]))
    assert resp.status_code == 400 and 'id="error-networks"' in resp.get_data(as_text=True)


def test_coordinator_cannot_add_to_network_outside_scope(coordinator, world):
    resp = coordinator.post("/members/new", data=add_form(
        coordinator, world, networks=[str(network_id(world, "Zuidrand"))]))
    assert resp.status_code == 400 and member_count(world) == 4


def _mid(world, phone):
    return world.member_by_number(phone).id


def test_edit_member_changes_language(coordinator, world):
    mid = _mid(world, "+32472111111")
    coordinator.post(f"/members/{mid}", data=add_form(coordinator, world, phone="+32472111111", lang="fr"))
    assert world.member_by_number("+32472111111").language == "fr"


def test_edit_keeps_networks_outside_the_editors_scope(client, world):
    world.add_member("Zuidrand", "0472 11 11 11")       # Kim is now in Kerkwijk and Zuidrand
    login_as(client, world, "coord")
    mid = _mid(world, "+32472111111")
    client.post(f"/members/{mid}", data=add_form(client, world, phone="+32472111111"))
    from web.queries import member
    assert {n.name for n in member(world, mid).networks} == {"Kerkwijk", "Zuidrand"}


def test_opt_out_is_visible_on_member_page(coordinator, world):
    world.set_opt_out("+32472111111", True)
    html = coordinator.get(f"/members/{_mid(world, '+32472111111')}").get_data(as_text=True)
    assert 'id="opted-out">yes' in html or 'id="opted-out">ja' in html


def test_deactivate_member(coordinator, world):
    mid = _mid(world, "+32472111111")
    coordinator.post(f"/members/{mid}/active", data={"csrf_token": csrf_token(coordinator), "active": "0"})
    assert world.member_by_number("+32472111111").active is False


CSV_GOOD = "name,phone,channel,lang\nEen,0476 10 10 10,sms,nl\nTwee,0476 20 20 20,,fr\n"
CSV_BAD = "name,phone,channel,lang\nEen,0476 10 10 10,sms,nl\nFout,12,sms,nl\nTwee,0476 20 20 20,,xx\n"


def import_form(client, world, text, step="preview", **kw):
    return {"csrf_token": csrf_token(client), "network": str(network_id(world, "Kerkwijk")), "text": text,
            "step": step, **kw}


def test_import_preview_lists_rows_and_writes_nothing(coordinator, world):
    html = coordinator.post("/members/import", data=import_form(coordinator, world, CSV_GOOD)).get_data(as_text=True)
    assert "+32476101010" in html and member_count(world) == 4


def test_import_preview_shows_per_row_errors(coordinator, world):
    html = coordinator.post("/members/import", data=import_form(coordinator, world, CSV_BAD)).get_data(as_text=True)
    assert "Line 3: the number “12” does not exist" in html and "Line 4: the language “xx” is not one of" in html


def test_import_writes_the_rows(coordinator, world):
    coordinator.post("/members/import", data=import_form(coordinator, world, CSV_GOOD, step="import"))
    assert member_count(world) == 6


def test_import_with_bad_rows_imports_nothing(coordinator, world):
    resp = coordinator.post("/members/import", data=import_form(coordinator, world, CSV_BAD, step="import"))
    assert resp.status_code == 400 and member_count(world) == 4


def test_import_skipping_bad_rows_imports_the_good_ones(coordinator, world):
    coordinator.post("/members/import", data=import_form(coordinator, world, CSV_BAD, step="import", skip_bad="1"))
    assert member_count(world) == 5


def test_import_upload_file(coordinator, world):
    import io
    data = import_form(coordinator, world, "")
    data["file"] = (io.BytesIO(CSV_GOOD.encode("cp1252")), "leden.csv")
    html = coordinator.post("/members/import", data=data, content_type="multipart/form-data").get_data(as_text=True)
    assert "+32476202020" in html


def test_import_without_phone_column_is_a_form_error(coordinator, world):
    resp = coordinator.post("/members/import", data=import_form(coordinator, world, "a,b\n1,2\n"))
    assert resp.status_code == 400 and 'id="error-file"' in resp.get_data(as_text=True)


def test_admin_adds_network(admin, world):
    admin.post("/networks/new", data={"csrf_token": csrf_token(admin), "name": "Nieuwwijk", "zone": "Zone Noord"})
    assert network_id(world, "Nieuwwijk") is not None


def test_duplicate_network_name_is_a_form_error(admin):
    resp = admin.post("/networks/new", data={"csrf_token": csrf_token(admin), "name": "Kerkwijk", "zone": ""})
    assert resp.status_code == 400 and 'id="error-name"' in resp.get_data(as_text=True)


def test_search_by_local_number_finds_member(police):
    html = police.get("/members?q=0470 12 34").get_data(as_text=True)
    assert "An Peeters" in html and "Luc Dubois" not in html


def test_search_by_name(police):
    html = police.get("/members?q=dubois").get_data(as_text=True)
    assert "Luc Dubois" in html and "An Peeters" not in html


def test_members_are_sorted_by_name_across_pages(admin, world):
    import re
    # Added Z..A: ids ascend while names descend, so a per-page sort would put "Zz" names on page 1.
    for i in range(60):
        world.add_member("Kerkwijk", f"+3247560{i:04d}", f"{chr(ord('Z') - i % 26)}{i:02d} Lid")
    first = re.findall(r'<a href="/members/\d+">(?:<bdi>)?([^<]+)(?:</bdi>)?</a>', admin.get("/members").get_data(as_text=True))
    second = re.findall(r'<a href="/members/\d+">(?:<bdi>)?([^<]+)(?:</bdi>)?</a>',
                        admin.get("/members?page=2").get_data(as_text=True))
    names = first + second
    assert names == sorted(names, key=str.lower) and len(first) == 50


def test_member_pages_switch_only_to_page_languages(coordinator):
    html = coordinator.get("/members/new").get_data(as_text=True)
    switch = html.split('action="/language"')[1].split("</form>")[0]
    assert 'value="de"' not in switch and 'value="fr"' in switch
    assert '<option value="de"' in html          # a member may still receive German texts


def test_opt_out_and_deactivate_are_explained_apart(coordinator, world):
    mid = world.add_member("Kerkwijk", "+32475609999", "Els").id
    html = coordinator.get(f"/members/{mid}").get_data(as_text=True)
    assert 'aria-describedby="opt-out-help"' in html and 'aria-describedby="deactivate-help"' in html
    form_end = html.index("</form>")
    assert html.index('id="toggle-active"') > form_end      # not beside the opt-out box in the same form


CSV_WITH_BAD_ROW = "name,phone,channel,lang\nJan,0470 11 22 33,sms,nl\nFout,12,sms,nl\n"


def test_import_preview_puts_the_import_button_above_the_rows(coordinator, world):
    resp = coordinator.post("/members/import", data={"csrf_token": csrf_token(coordinator), "step": "preview",
                                                     "network": str(network_id(world, "Kerkwijk")),
                                                     "text": CSV_WITH_BAD_ROW})
    html = resp.get_data(as_text=True)
    assert html.index('id="do-import"') < html.index('id="import-rows"')
    assert 'id="download-bad"' in html


def test_import_preselects_the_only_network(coordinator, world):
    html = coordinator.get("/members/import").get_data(as_text=True)
    assert f'value="{network_id(world, "Kerkwijk")}" selected' in html


def test_bad_rows_download_as_csv_as_typed(coordinator):
    resp = coordinator.post("/members/import/bad-rows.csv", data={"csrf_token": csrf_token(coordinator),
                                                                  "text": CSV_WITH_BAD_ROW})
    lines = resp.get_data(as_text=True).splitlines()
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert lines[0] == "name,phone,channel,lang,error" and lines[1].startswith("Fout,12,sms,nl,the number “12”")
    assert len(lines) == 2


def test_accented_names_sort_with_their_letter(admin, world):
    """Review 17b: SQLite's lower() leaves "É" alone and "é" sorts after "z", so "Émile" and "élodie" came
    after "Zoë Zuid", at the end of the last page, where a coordinator looking under E never finds them."""
    import re
    for name, phone in (("Émile Dubois", "0476 11 11 11"), ("Zeno", "0476 22 22 22"), ("Eva", "0476 33 33 33"),
                        ("élodie", "0476 44 44 44"), ("Östen", "0476 55 55 55")):
        world.add_member("Kerkwijk", phone, name)
    names = re.findall(r'<a href="/members/\d+">(?:<bdi>)?([^<]+)(?:</bdi>)?</a>', admin.get("/members").get_data(
        as_text=True))
    assert names == ["An Peeters", "élodie", "Émile Dubois", "Eva", "Kim Janssens", "Luc Dubois", "Östen", "Zeno",
                     "Zoë Zuid"]


def test_search_finds_a_name_typed_without_its_accents(admin, world):
    """Review 17b: "emile" did not find "Émile Dubois" (SQL LIKE compares accents), and "%" or "_" in the
    search box listed every member."""
    world.add_member("Kerkwijk", "0476 11 11 11", "Émile Dubois")
    html = admin.get("/members?q=emile").get_data(as_text=True)
    assert "Émile Dubois" in html
    assert "Kim Janssens" not in admin.get("/members?q=%25").get_data(as_text=True)
    assert "Kim Janssens" not in admin.get("/members?q=_").get_data(as_text=True)


def test_members_table_words_the_language(coordinator, world):
    """Review 17b: the members table showed the code ("nl") where the status page's recipients table words it."""
    from .test_import_words import in_language
    html = in_language(coordinator, "fr").get("/members").get_data(as_text=True)
    row = html.split("Kim Janssens")[1].split("</tr>")[0]
    assert "néerlandais" in row and ">nl<" not in row
