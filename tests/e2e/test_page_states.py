"""Every page a dispatcher, coordinator and admin reach, in Dutch and French: axe-core finds nothing at
WCAG 2.1 A/AA, and each state fits 320, 390 and 1280 px and a 1280 px window zoomed to 200 and 400 %
(screenshots in test-artifacts/)."""
from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC

from gatewayd.store import AlertRequest

from .pagecheck import check_page
from .test_police_page import login, type_time, wait

pytestmark = pytest.mark.browser


def switch_language(driver, lang: str) -> None:
    driver.find_element(By.CSS_SELECTOR, f'button[name="lang"][value="{lang}"]').click()
    wait(driver).until(lambda d: d.execute_script("return document.documentElement.lang") == lang)


def logout(driver) -> None:
    driver.find_element(By.ID, "logout").click()
    wait(driver).until(EC.presence_of_element_located((By.ID, "username")))


@pytest.mark.parametrize("lang", ["nl", "fr"])
def test_every_page_state_is_accessible_and_fits(live, browser, lang):
    base, store = live
    from gatewayd.model import utcnow
    store.set_opt_out("+32475500001", True)       # the members list shows an opted-out tag
    store.record_inbound("sim1", "+32475500003", "Twee mannen achter nr 14", "report", utcnow(), None, None)
    browser.get(f"{base}/login")
    switch_language(browser, lang)
    check_page(browser, f"{lang}-login")
    login(browser, base, "agent")
    check_page(browser, f"{lang}-start")
    browser.get(f"{base}/alerts/new?category=urgent&template=burglary")
    browser.find_element(By.XPATH, '//label[contains(., "Lindeknoppen")]/input').click()
    wait(browser).until(EC.presence_of_element_located((By.ID, "pv-members")))
    check_page(browser, f"{lang}-compose-preview")
    browser.find_element(By.ID, "to-confirm").click()
    wait(browser).until(EC.presence_of_element_located((By.ID, "error-summary")))
    check_page(browser, f"{lang}-compose-errors")
    browser.find_element(By.ID, "field_burglary_0").send_keys("Lindestraat")
    type_time(browser, "field_burglary_1", "14:00")
    browser.find_element(By.ID, "to-confirm").click()
    wait(browser).until(EC.presence_of_element_located((By.ID, "restate")))
    check_page(browser, f"{lang}-confirm")
    browser.find_element(By.ID, "send").click()
    wait(browser, 90).until(lambda d: d.find_element(By.ID, "done-banner").get_attribute("data-all-sent") == "1")
    check_page(browser, f"{lang}-status-done")
    aid = store.enqueue_alert(AlertRequest(networks=("Kerkwijk",), category="prevention", text="Test",
                                           author="agent", drill=True)).alert_id
    browser.get(f"{base}/alerts/{aid}")
    check_page(browser, f"{lang}-status-drill")
    for path, name in (("/alerts", "alerts"), ("/members", "members"), ("/networks", "networks"),
                       ("/inbox", "inbox"), ("/devices", "devices")):
        browser.get(base + path)
        check_page(browser, f"{lang}-{name}")
    logout(browser)
    login(browser, base, "coord")
    browser.get(f"{base}/members/new")
    check_page(browser, f"{lang}-member-new")
    browser.get(f"{base}/members/import")
    check_page(browser, f"{lang}-import")
    browser.find_element(By.ID, "csv-text").send_keys("name,phone,channel,lang\nJan,0470 11 22 33,sms,nl\n"
                                                      "Bad,12,sms,nl\n")
    browser.find_element(By.ID, "preview-import").click()
    wait(browser).until(EC.presence_of_element_located((By.ID, "import-rows")))
    check_page(browser, f"{lang}-import-preview")
    logout(browser)
    login(browser, base, "admin")
    for path, name in (("/audit", "audit"), ("/admin/users", "users"), ("/admin/templates", "templates"),
                       ("/admin/tokens", "tokens")):
        browser.get(base + path)
        check_page(browser, f"{lang}-{name}")
