"""The live preview tells a screen reader only the figures that changed (issue 17, Deliver 5; review 17b:
no browser test checked it, and an empty form put a role=alert error in the panel on every refresh). The
panel is no live region: only #preview-announce speaks."""
from __future__ import annotations

import time

import pytest
from selenium.webdriver.common.by import By

from .test_police_page import login, wait

pytestmark = pytest.mark.browser


def announced(driver) -> str:
    return driver.find_element(By.ID, "preview-announce").get_attribute("textContent")


def alerts_in_preview(driver) -> int:
    return len(driver.find_elements(By.CSS_SELECTOR, "#preview [role=alert], #preview [aria-live]"))


def test_preview_announces_only_what_changed(live, browser):
    base, store = live
    login(browser, base, "agent")
    browser.get(f"{base}/alerts/new?category=urgent")
    assert browser.find_element(By.ID, "preview").get_attribute("aria-live") is None
    time.sleep(1.5)                                  # the empty form's first refresh: no news, no alert
    assert alerts_in_preview(browser) == 0 and announced(browser) == ""
    browser.find_element(By.XPATH, '//label[contains(., "Lindeknoppen")]/input').click()
    wait(browser).until(lambda d: "22" in announced(d))          # who is reached, before any text
    assert alerts_in_preview(browser) == 0
    browser.find_element(By.ID, "text_nl").send_keys("Inbraak in de Lindestraat")
    wait(browser).until(lambda d: "segment" in announced(d))
    said = announced(browser)
    assert "22" not in said                                      # the unchanged members are not repeated
    browser.find_element(By.XPATH, '//label[contains(., "Kerkwijk")]/input').click()
    wait(browser).until(lambda d: "23" in announced(d))
    assert "segment" not in announced(browser)                   # nor the unchanged segments
    browser.find_element(By.ID, "text_nl").send_keys(" ［straat］")
    wait(browser).until(lambda d: d.find_elements(By.ID, "pv-text-error"))
    wait(browser).until(lambda d: "straat" in announced(d))      # the text problem is said, once, politely
    assert alerts_in_preview(browser) == 0
