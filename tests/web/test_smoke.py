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


def test_openapi_describes_the_api_routes(app):
    """Every path in web/openapi.yaml is an API route of the app, and every API route is described."""
    import re
    from pathlib import Path
    spec = (Path(__file__).resolve().parents[2] / "web" / "openapi.yaml").read_text()
    described = {"/api/v1" + re.sub(r"\{(\w+)\}", r"<\1>", p) for p in re.findall(r"^  (/[^:]+):$", spec, re.M)}
    routes = {re.sub(r"<int:(\w+)>", r"<\1>", r.rule) for r in app.url_map.iter_rules()
              if r.rule.startswith("/api/")}
    assert described == routes


@pytest.mark.parametrize("listen,expected", [("127.0.0.1:8080", ("127.0.0.1", 8080)),
                                             ("[::1]:9000", ("::1", 9000)), (":8080", ("0.0.0.0", 8080))])
def test_parse_listen(listen, expected):
    from web.server import parse_listen
    assert parse_listen(listen) == expected


def test_parse_listen_refuses_garbage():
    from gatewayd.config import ConfigError
    from web.server import parse_listen
    with pytest.raises(ConfigError):
        parse_listen("localhost")
