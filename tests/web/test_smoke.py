"""Every page renders for the roles that may see it."""
from __future__ import annotations

import pytest

from .conftest import login_as

PAGES_ALL = ["/", "/alerts", "/members", "/networks", "/inbox", "/devices", "/devices.json"]
PAGES_ADMIN = ["/audit", "/admin/users", "/admin/templates", "/admin/tokens", "/networks/new", "/admin/users/new"]


@pytest.mark.parametrize("role", ["agent", "coord", "admin"])
@pytest.mark.parametrize("path", PAGES_ALL)
def test_page_renders_for_every_role(client, world, role, path):
    login_as(client, world, role)
    assert client.get(path).status_code == 200


@pytest.mark.parametrize("path", PAGES_ADMIN)
def test_admin_page_renders_for_admin(admin, path):
    assert admin.get(path).status_code == 200
