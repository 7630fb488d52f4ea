"""The devices page on a phone (issue 17, session 3): the gateways and devices tables are cards at 320 and
390 px like the other tables (nothing scrolls sideways, each value is labelled with its column), and the
gateway and device states read in the page language."""
from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By

from .pagecheck import check_page, scrolling_tables, set_width
from .test_police_page import login, wait

pytestmark = pytest.mark.browser

# A card cell without its column's name is a bare value ("20/31", "0"): nobody knows what it means.
UNLABELLED_JS = """return [...document.querySelectorAll('#nodes td, #devices td')]
  .filter(td => !td.hasAttribute('colspan') && !(td.dataset.label || '').trim())
  .map(td => td.closest('table').id + ': ' + td.textContent.trim().slice(0, 20));"""

NODE_STATES_NL = {"actief", "stil (geen hartslag)", "gestopt", "nooit gestart", "onbekend"}


def test_devices_are_cards_on_a_phone_in_the_page_language(live, browser):
    base, _store = live
    login(browser, base, "agent")
    browser.get(f"{base}/devices")
    wait(browser).until(lambda d: "sim1" in d.find_element(By.ID, "devices").text)
    check_page(browser, "nl-devices-cards")          # axe, no overflow; screenshots at 320/390/1280 and zoomed
    for width in (320, 390):
        set_width(browser, width)
        assert scrolling_tables(browser) == [], f"a table scrolls sideways at {width} px"
    assert browser.execute_script(UNLABELLED_JS) == []
    # nl: the emulated SIM is "werkt" (working), its gateway one of the Dutch node states, not the stored codes.
    assert browser.find_element(By.CSS_SELECTOR, "#devices .dev").text == "werkt"
    assert browser.find_element(By.CSS_SELECTOR, "#nodes .dev").text in NODE_STATES_NL
    assert "sim1 (werkt)" in browser.find_element(By.ID, "nodes").text
