"""The coordinator's and the admin's forms open with an error summary, as the compose form does
(review 17b): it takes focus (forms.js, every page) and links each message to its field. The member
form only had a "Please correct the fields marked below." line: a keyboard or screen-reader user had to
hunt for the field from the top of the page."""
from __future__ import annotations

import re

from .conftest import csrf_token, network_id


def summary_links(html: str) -> list[str]:
    m = re.search(r'<div class="error-summary" id="error-summary"[^>]*tabindex="-1".*?</div>', html, re.S)
    assert m, "no error summary"
    return re.findall(r'href="#([^"]+)"', m.group(0))


def test_member_form_summary_links_the_phone_and_the_networks(coordinator, world):
    html = coordinator.post("/members/new", data={
        "csrf_token": csrf_token(coordinator), "phone": "12ab", "name": "X", "channel": "", "lang": "nl",
        "networks": [str(network_id(world, "Kerkwijk"))]}).get_data(as_text=True)
    assert summary_links(html) == ["phone"] and 'id="phone"' in html
    html = coordinator.post("/members/new", data={
        "csrf_token": csrf_token(coordinator), "phone": "0470 12 34 56", "name": "X", "channel": "",
        "lang": "nl"}).get_data(as_text=True)
    [target] = summary_links(html)
    assert re.search(rf'<input type="checkbox" id="{target}" name="networks"', html)


def test_user_template_and_network_forms_have_the_summary(admin, world):
    html = admin.post("/admin/users/new", data={"csrf_token": csrf_token(admin), "username": "a b",
                                                "password": "een-lang-wachtwoord", "role": "police"})
    assert summary_links(html.get_data(as_text=True)) == ["username"]
    html = admin.post("/networks/new", data={"csrf_token": csrf_token(admin), "name": ""})
    assert summary_links(html.get_data(as_text=True)) == ["name"]
    tid = re.findall(r"/admin/templates/(\d+)", admin.get("/admin/templates").get_data(as_text=True))[0]
    html = admin.post(f"/admin/templates/{tid}", data={"csrf_token": csrf_token(admin), "title": "",
                                                       "category": "urgent", "text_nl": "x"})
    assert summary_links(html.get_data(as_text=True)) == ["title"]
