"""Login, redirects and sessions in headless Chromium (issue 11): a link with a foreign `next`
lands on the start page, and an admin's "log out everywhere" ends an open browser's session."""
from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By

from tests.web.conftest import PASSWORD

from .test_police_page import login, wait

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("target", ["/%09/evil.example", "//evil.example", "/%5Cevil.example",
                                    "https://evil.example/"])
def test_a_login_link_with_a_foreign_next_stays_on_the_site(live, browser, target):
    base, _ = live
    browser.get(f"{base}/login?next={target}")
    browser.find_element(By.ID, "username").send_keys("agent")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "login").click()
    wait(browser).until(lambda d: d.find_elements(By.ID, "logout"))
    assert browser.current_url == f"{base}/"


def test_a_login_link_to_a_page_of_the_site_is_followed(live, browser):
    base, _ = live
    browser.get(f"{base}/members")                  # not logged in: the login page remembers where to go
    browser.find_element(By.ID, "username").send_keys("agent")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "login").click()
    wait(browser).until(lambda d: d.current_url == f"{base}/members")


def test_log_out_everywhere_ends_an_open_browsers_session(live, browser):
    from tests.web.conftest import user_id
    base, store = live
    login(browser, base, "agent")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    from .conftest import CHROMEDRIVER, CHROMIUM
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--no-first-run"):
        opts.add_argument(arg)
    admin = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        login(admin, base, "admin")
        admin.get(f"{base}/admin/users/{user_id(store, 'agent')}")
        admin.find_element(By.ID, "logout-everywhere").click()
        wait(admin).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".flash.info"))
    finally:
        admin.quit()
    browser.get(f"{base}/alerts")
    assert "/login" in browser.current_url
