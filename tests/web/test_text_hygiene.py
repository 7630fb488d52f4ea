"""An alert must show something; untrusted text is shown bidi-isolated; preview and send keep the
same length limits, and a huge preview is refused before any work (issue 11)."""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from gatewayd.errors import InputError
from gatewayd.store import MAX_TEXT, AlertRequest

from .conftest import csrf_token, network_id
from .test_admin_api import new_token
from .test_alerts import alert_count, compose_form

INVISIBLE = ["\u200b\u200b\u200b", "\u200d\u2060\ufeff", "\u202e\u2066\u2069", "\u200b \u200c\n\u00ad",
             "\u0301\u0301",
             # Letters and symbols that draw nothing: Hangul fillers and the Braille blank (used to pass
             # "is it empty?" checks) — an SMS of them is as empty as one of zero-width spaces.
             "\u3164\u3164", "\u115f\u1160", "\uffa0 \uffa0", "\u2800\u2800\u2800"]
RLO = "\u202e"
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("text", INVISIBLE)
def test_the_store_refuses_an_alert_of_invisible_characters(world, text):
    with pytest.raises(InputError, match="invisible") as exc:
        world.validate_alert(AlertRequest(networks=("Lindeknoppen",), category="urgent", text=text))
    assert exc.value.field == "text"


def test_an_invisible_text_in_one_language_is_refused_too(world):
    with pytest.raises(InputError) as exc:
        world.validate_alert(AlertRequest(networks=("Lindeknoppen",), category="urgent", text="Inbraak",
                                          texts={"nl": "Inbraak", "fr": "\u200b\u200b"}))
    assert exc.value.field == "text[fr]"


def test_visible_text_with_a_zero_width_joiner_is_fine(world):
    world.validate_alert(AlertRequest(networks=("Lindeknoppen",), category="urgent", text="Inbraak\u200d 👮"))


def test_the_page_refuses_an_invisible_alert(police, world):
    form = compose_form(police, world, text="\u200b\u200b\u200b")
    resp = police.post("/alerts/confirm", data=form)
    assert resp.status_code == 400 and "invisible" in resp.get_data(as_text=True)
    assert police.post("/alerts/send", data={**form, "confirm_token": "x" * 32}).status_code == 400
    assert alert_count(world) == 0


def test_the_api_refuses_an_invisible_alert(admin, world):
    token = new_token(admin)
    resp = admin.post("/api/v1/alerts", headers={"Authorization": f"Bearer {token}"},
                      json={"networks": ["Lindeknoppen"], "category": "urgent", "text": "\u200b\u2060"})
    assert resp.status_code == 400 and resp.get_json()["field"] == "text"


def test_the_cli_refuses_an_invisible_alert(cfg, tmp_path):
    conf = tmp_path / "cli.toml"
    conf.write_text(f'[database]\nurl = "{cfg.database.url}"\n[dispatch]\nquiet_hours = ""\n')
    result = subprocess.run([sys.executable, "-m", "gatewayd", "-c", str(conf), "alert", "send", "--network",
                             "Lindeknoppen", "--category", "urgent", "--text", "\u200b\u200b"],
                            capture_output=True, text=True, timeout=120, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "invisible" in result.stderr


# ---------------------------------------------------------------------- length: preview == send
def preview(client, world, text):
    return client.post("/alerts/preview", data=compose_form(client, world, text=text))


def test_a_text_the_send_refuses_is_refused_by_the_preview(police, world):
    long_text = "Inbraak " * 200                      # 1600 characters: over MAX_TEXT
    assert len(long_text) > MAX_TEXT
    shown = preview(police, world, long_text).get_data(as_text=True)
    assert 'id="pv-text-error"' in shown and f"at most {MAX_TEXT}" in shown and 'id="pv-members"' not in shown
    form = compose_form(police, world, text=long_text)
    sent = police.post("/alerts/send", data={**form, "confirm_token": "x" * 32})
    assert sent.status_code == 400 and f"at most {MAX_TEXT}" in sent.get_data(as_text=True)


def test_a_two_megabyte_preview_is_refused_before_it_is_read(police, world):
    resp = preview(police, world, "A" * (2 * 1024 * 1024 - 1000))
    assert resp.status_code == 413


@pytest.mark.parametrize("path", ["/alerts/confirm", "/alerts/send"])
def test_confirm_and_send_refuse_huge_bodies_too(police, world, path):
    assert police.post(path, data=compose_form(police, world, text="A" * 300_000)).status_code == 413


def test_a_text_at_the_limit_previews(police, world):
    shown = preview(police, world, "Inbraak " * 100).get_data(as_text=True)
    assert 'id="pv-members"' in shown


# ---------------------------------------------------------------------- bidi isolation
def test_inbox_text_is_isolated(police, world):
    mid = world.member_by_number("+32470123456").id
    world.record_inbound("sim1", "+32470123456", f"{RLO}gnal oot", "report", datetime.now(timezone.utc), mid, None)
    html = police.get("/inbox").get_data(as_text=True)
    assert f"<bdi>{RLO}gnal oot</bdi>" in html


def test_member_names_are_isolated(coordinator, world):
    world.add_member("Kerkwijk", "0476 77 77 77", f"Eva {RLO}sredaaW")
    html = coordinator.get("/members").get_data(as_text=True)
    assert f"<bdi>Eva {RLO}sredaaW</bdi>" in html


def test_csv_fields_are_isolated_in_the_import_preview(coordinator, world):
    text = f"name,phone,channel,lang\nBob {RLO}kcab,0476 31 31 31,sms,nl\nFout,12{RLO},sms,nl\n"
    html = coordinator.post("/members/import", data={
        "csrf_token": csrf_token(coordinator), "network": str(network_id(world, "Kerkwijk")), "text": text,
        "step": "preview"}).get_data(as_text=True)
    assert f"<bdi>Bob {RLO}kcab</bdi>" in html
    assert html.count("<li><bdi>Line 3") == 1
