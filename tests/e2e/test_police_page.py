"""End to end in headless Chromium: log in, compose, preview, confirm, watch it go out."""
from __future__ import annotations

import pytest
from selenium.common.exceptions import JavascriptException, NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from tests.web.conftest import PASSWORD

from .conftest import ARTIFACTS

pytestmark = pytest.mark.browser


def shot(driver, name: str) -> None:
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def login(driver, base, username):
    driver.get(f"{base}/login")
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "login").click()
    wait(driver).until(EC.presence_of_element_located((By.ID, "logout")))


def type_time(driver, field_id: str, hhmm: str) -> None:
    """Type a time into an <input type=time> as a keyboard user would (the browser's own segments)."""
    el = driver.find_element(By.ID, field_id)
    el.click()
    el.send_keys(hhmm.replace(":", ""))
    wait(driver).until(lambda d: el.get_attribute("value") == hhmm)


def wait(driver, seconds=20):
    # A poll can land mid-navigation: a stale or missing element means "not yet", not failure.
    return WebDriverWait(driver, seconds, poll_frequency=0.2,
                         ignored_exceptions=(StaleElementReferenceException, NoSuchElementException,
                                             JavascriptException))


def test_officer_sends_urgent_alert_and_sees_it_all_sent(live, browser):
    base, store = live
    browser.get(f"{base}/login")
    shot(browser, "01-login")
    login(browser, base, "agent")
    browser.find_element(By.ID, "tpl-burglary").click()                                    # click 1
    browser.find_element(By.XPATH, '//label[contains(., "Lindeknoppen")]/input').click()   # click 2
    browser.find_element(By.ID, "field_burglary_0").send_keys("Lindestraat")
    type_time(browser, "field_burglary_1", "14:00")
    text = browser.find_element(By.ID, "text_nl")
    text.clear()
    text.send_keys("BIN-alarm: inbraak in de Lindestraat rond 14u. Daders mogelijk nog in de buurt. "
                   "Niet zelf tussenkomen; bel 101 met signalement of nummerplaat. " * 2)
    wait(browser).until(lambda d: d.find_element(By.ID, "pv-members").text == "22")
    # Re-read each time: the preview is re-rendered after every typing pause (a held element goes stale).
    wait(browser).until(lambda d: d.find_element(By.ID, "segments-nl").text.split()[0] == "2")
    shot(browser, "02-compose-preview")
    browser.find_element(By.ID, "to-confirm").click()                                      # click 3
    wait(browser).until(EC.presence_of_element_located((By.ID, "restate")))
    assert "22" in browser.find_element(By.ID, "restate").text
    shot(browser, "03-confirm")
    browser.find_element(By.ID, "send").click()                                            # click 4
    banner = wait(browser, 90).until(  # polled by status.js, no reload
        lambda d: d.find_element(By.ID, "done-banner")
        if d.find_element(By.ID, "done-banner").get_attribute("data-all-sent") == "1" else False)
    assert banner.is_displayed()
    shot(browser, "04-status-all-sent")
    counts = store.alert_status(1)["messages"]
    assert set(counts) <= {"sent", "delivered"} and sum(counts.values()) == 22


def test_status_page_updates_without_reload(live, browser):
    base, store = live
    login(browser, base, "agent")
    from gatewayd.store import AlertRequest
    # Queue directly, then watch the page (opened while nothing has gone yet) catch up by itself.
    aid = store.enqueue_alert(AlertRequest(networks=("Lindeknoppen",), category="urgent", text="Test",
                                           author="agent")).alert_id
    browser.get(f"{base}/alerts/{aid}")
    browser.execute_script("window.__marker = 'same page';")
    wait(browser, 90).until(lambda d: d.find_element(By.ID, "reached").text == "22")
    assert browser.find_element(By.ID, "members-reached").text == "22"          # members, not messages
    # The recipients table follows the banner: no row still says queued/sending once all is sent.
    wait(browser, 30).until(lambda d: not d.find_elements(By.CSS_SELECTOR, "#recipients td.st.queued, "
                                                                        "#recipients td.st.sending"))
    # Completion is announced: the banner fills the live region once the alert is finished (the daemon's
    # housekeeping marks it so a moment after its last message; the page polls, so wait for it).
    live = browser.find_element(By.ID, "status-live")
    assert live.get_attribute("role") == "status"
    wait(browser, 30).until(lambda d: d.find_element(By.ID, "status-live").text.strip())
    assert browser.execute_script("return window.__marker;") == "same page"


def test_screenshots_of_members_devices_and_audit(live, browser):
    base, _ = live
    login(browser, base, "coord")
    browser.get(f"{base}/members")
    assert "Kim Janssens" in browser.page_source
    shot(browser, "05-members")
    browser.get(f"{base}/devices")
    wait(browser).until(lambda d: "sim1" in d.page_source or d.refresh())
    shot(browser, "06-devices")
    browser.find_element(By.ID, "logout").click()
    login(browser, base, "admin")
    browser.get(f"{base}/audit")
    assert "login" in browser.find_element(By.ID, "audit").text
    shot(browser, "07-audit")


def test_start_page_fits_a_phone(live, browser):
    base, _ = live
    login(browser, base, "agent")
    browser.set_window_size(390, 844)
    browser.get(f"{base}/")
    width = browser.execute_script("return document.documentElement.scrollWidth;")
    shot(browser, "08-start-phone")
    assert width <= 400


def test_choosing_a_template_fills_the_texts(live, browser):
    from selenium.webdriver.support.ui import Select
    base, _ = live
    login(browser, base, "agent")
    browser.get(f"{base}/alerts/new?category=urgent")
    Select(browser.find_element(By.ID, "template")).select_by_value("missing_person")
    wait(browser).until(lambda d: d.find_element(By.ID, "text_fr").get_attribute("value").startswith("Appel PLP"))
    assert browser.find_element(By.ID, "text_nl").get_attribute("value").startswith("BIN-oproep: vermiste persoon")


def test_language_switch_to_french(live, browser):
    base, _ = live
    login(browser, base, "agent")
    browser.find_element(By.CSS_SELECTOR, 'button[name="lang"][value="fr"]').click()
    wait(browser).until(lambda d: d.execute_script("return document.documentElement.lang") == "fr")
    assert "Envoyer une alerte" in browser.page_source
