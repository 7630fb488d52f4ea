"""The compose page under a keyboard: template fields filled once, Enter never sends half a form, errors take focus."""
from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC

from .test_police_page import login, shot, type_time, wait

pytestmark = pytest.mark.browser


def active_id(driver) -> str:
    return driver.execute_script("return document.activeElement && document.activeElement.id;")


def test_template_fields_enter_and_error_summary(live, browser):
    base, store = live
    login(browser, base, "agent")
    browser.get(f"{base}/alerts/new?category=urgent&template=burglary")
    network = browser.find_element(By.XPATH, '//label[contains(., "Lindeknoppen")]/input')
    network.click()
    network.send_keys(Keys.ENTER)                 # Enter on a checkbox: nothing is submitted
    street = browser.find_element(By.ID, "field_burglary_0")
    street.send_keys("Lindestraat" + Keys.ENTER)  # Enter in a one-line field: nothing is submitted
    wait(browser).until(lambda d: d.find_element(By.ID, "pv-members").text == "22")
    assert browser.current_url.endswith("/alerts/new?category=urgent&template=burglary")
    browser.find_element(By.ID, "to-confirm").click()   # the time is missing
    wait(browser).until(EC.presence_of_element_located((By.ID, "error-summary")))
    wait(browser).until(lambda d: active_id(d) == "error-summary")
    shot(browser, "compose-error-summary")
    link = browser.find_element(By.CSS_SELECTOR, '#error-summary a[href="#field_burglary_1"]')
    assert "Uur" in link.text                             # named in the dispatcher's language (nl)
    link.click()
    assert active_id(browser) == "field_burglary_1"
    field = browser.find_element(By.ID, "field_burglary_1")
    assert field.get_attribute("aria-invalid") == "true"
    assert field.get_attribute("aria-describedby") == "error-field_1"
    assert browser.find_element(By.ID, "field_burglary_0").get_attribute("value") == "Lindestraat"
    type_time(browser, "field_burglary_1", "14:00")
    browser.find_element(By.ID, "to-confirm").click()
    restate = wait(browser).until(EC.presence_of_element_located((By.ID, "restate")))
    assert "22" in restate.text
    page = browser.find_element(By.TAG_NAME, "main").text
    assert "inbraak in Lindestraat rond 14:00" in page and "cambriolage à Lindestraat vers 14:00" in page
    assert "[" not in page.split(restate.text)[1]
