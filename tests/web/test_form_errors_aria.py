"""Member, user and template forms: the field in error says so to a screen reader
(aria-invalid) and points at its message (aria-describedby), as the compose form does."""
from __future__ import annotations

import re

from sqlalchemy import select

from gatewayd.model import AlertTemplate

from .conftest import csrf_token, network_id


def control(html: str, control_id: str) -> str:
    """The opening tag of the input/select/textarea with id CONTROL_ID."""
    m = re.search(rf'<(?:input|select|textarea)\b[^>]*\bid="{control_id}"[^>]*>', html)
    assert m, f"no control with id={control_id}"
    return m.group(0)


def assert_points_at_its_error(html: str, control_id: str, error_key: str) -> None:
    tag = control(html, control_id)
    assert 'aria-invalid="true"' in tag and f'aria-describedby="error-{error_key}"' in tag, tag
    assert f'id="error-{error_key}"' in html


def test_member_form_marks_the_phone_in_error(coordinator, world):
    resp = coordinator.post("/members/new", data={
        "csrf_token": csrf_token(coordinator), "phone": "12ab", "name": "X", "channel": "", "lang": "nl",
        "networks": [str(network_id(world, "Kerkwijk"))]})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert_points_at_its_error(html, "phone", "phone")
    assert 'aria-invalid' not in control(html, "name")


def test_member_form_marks_the_language_in_error(coordinator, world):
    resp = coordinator.post("/members/new", data={
        "csrf_token": csrf_token(coordinator), "phone": "0476 55 44 33", "name": "X", "channel": "",
        "lang": "xx", "networks": [str(network_id(world, "Kerkwijk"))]})
    assert_points_at_its_error(resp.get_data(as_text=True), "lang", "lang")


def test_user_form_marks_the_password_in_error(admin):
    resp = admin.post("/admin/users/new", data={"csrf_token": csrf_token(admin), "username": "nieuw",
                                                "role": "police", "zone": "", "password": "short"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert_points_at_its_error(html, "password", "password")
    assert 'aria-invalid' not in control(html, "username")


def test_template_form_marks_the_text_in_error(admin, world):
    with world.session() as s:
        tid = s.scalar(select(AlertTemplate.id).where(AlertTemplate.key == "burglary"))
    resp = admin.post(f"/admin/templates/{tid}", data={"csrf_token": csrf_token(admin), "title": "Inbraak",
                                                      "category": "urgent"})
    assert resp.status_code == 400
    assert_points_at_its_error(resp.get_data(as_text=True), "text_nl", "text_nl")


# Review 17b: the network and API token forms and the import form's network / file fields showed their
# error beside the field, but the field said nothing to a screen reader.
def test_network_form_marks_the_name_in_error(admin, world):
    html = admin.post("/networks/new", data={"csrf_token": csrf_token(admin), "name": ""}).get_data(as_text=True)
    assert_points_at_its_error(html, "name", "name")


def test_token_form_marks_the_name_in_error(admin, world):
    html = admin.post("/admin/tokens", data={"csrf_token": csrf_token(admin), "name": ""}).get_data(as_text=True)
    assert_points_at_its_error(html, "name", "name")


def test_token_form_shows_a_zone_error(admin, world):
    """A zone too long was refused with no message on the page at all."""
    html = admin.post("/admin/tokens", data={"csrf_token": csrf_token(admin), "name": "cad",
                                             "zone": "z" * 200}).get_data(as_text=True)
    assert_points_at_its_error(html, "zone", "zone")


def test_import_form_marks_the_network_and_the_file_in_error(coordinator, world):
    html = coordinator.post("/members/import", data={"csrf_token": csrf_token(coordinator), "network": "",
                                                     "text": "", "step": "preview"}).get_data(as_text=True)
    assert_points_at_its_error(html, "network", "network")
    assert_points_at_its_error(html, "csv-text", "file")
