"""Keyboard users see where they are: a skip link first, and a focus ring of >= 3:1 against what surrounds it."""
from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from .test_police_page import login

pytestmark = pytest.mark.browser

# Contrast of the focused element's outline against the background it is drawn on (the nearest ancestor
# with an opaque background: the ring sits outside the element, offset from it).
_RING_JS = """
function rgb(c) { const m = c.match(/\\d+(\\.\\d+)?/g).map(Number); return m.length > 3 && m[3] === 0 ? null : m.slice(0, 3); }
function lum(c) { return c.map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); })
                          .reduce((a, v, i) => a + v * [0.2126, 0.7152, 0.0722][i], 0); }
const el = document.activeElement;
if (!el || el === document.body || el === document.documentElement) return null;
const st = getComputedStyle(el);
let bg = null;
for (let p = el.parentElement; p && !bg; p = p.parentElement) bg = rgb(getComputedStyle(p).backgroundColor);
bg = bg || [255, 255, 255];
const ring = rgb(st.outlineColor), a = lum(ring), b = lum(bg);
return {id: el.id || el.textContent.trim().slice(0, 20), width: parseFloat(st.outlineWidth), style: st.outlineStyle,
        ratio: (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)};
"""


def test_skip_link_first_and_focus_ring_visible_everywhere_on_the_start_page(live, browser):
    base, _ = live
    login(browser, base, "agent")
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    first = browser.switch_to.active_element
    assert first.get_attribute("class") == "skip-link" and first.is_displayed()
    weak, seen = [], set()
    for _ in range(25):              # the header, then the red template buttons
        ring = browser.execute_script(_RING_JS)
        if ring is None:             # nothing focused yet (the page itself)
            browser.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
            continue
        seen.add(ring["id"])
        if ring["style"] == "none" or ring["width"] < 2 or ring["ratio"] < 3:
            weak.append(ring)
        browser.switch_to.active_element.send_keys(Keys.TAB)
    assert weak == [] and len(seen) >= 15 and "tpl-burglary" in seen
    first_after_skip = browser.execute_script("return document.querySelector('.skip-link').getAttribute('href');")
    assert first_after_skip == "#main"
