"""A drill end to end in Chromium: tick "oefening", see it restated, run it, read the drill report."""
from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from sqlalchemy import select

from gatewayd.model import Message

from .test_police_page import login, shot, type_time, wait

pytestmark = pytest.mark.browser


def test_officer_runs_a_drill_and_reads_its_report(live, browser):
    base, store = live
    login(browser, base, "agent")
    browser.get(f"{base}/alerts/new?category=urgent&template=burglary")
    browser.find_element(By.XPATH, '//label[contains(., "Lindeknoppen")]/input').click()
    browser.find_element(By.ID, "field_burglary_0").send_keys("Lindestraat")   # the template's fields
    type_time(browser, "field_burglary_1", "14:00")
    browser.find_element(By.ID, "drill").click()
    browser.find_element(By.ID, "field_burglary_0").send_keys("Lindestraat")   # a template's fields are
    type_time(browser, "field_burglary_1", "14:00")                            # filled before it can go
    wait(browser).until(EC.visibility_of_element_located((By.ID, "pv-drill")))
    shot(browser, "09-drill-compose")
    browser.find_element(By.ID, "to-confirm").click()
    wait(browser).until(EC.presence_of_element_located((By.ID, "confirm-drill")))
    shot(browser, "10-drill-confirm")
    browser.find_element(By.ID, "send").click()
    wait(browser, 90).until(
        lambda d: d.find_element(By.ID, "done-banner").get_attribute("data-all-sent") == "1")
    browser.refresh()        # the report is rendered by the server once the drill ran
    wait(browser).until(lambda d: d.find_element(By.ID, "dr-reached").text == "22 / 22")
    shot(browser, "11-drill-report")
    with store.session() as s:
        reasons = set(s.scalars(select(Message.reason).where(Message.alert_id == 1)))
    assert browser.find_element(By.ID, "alert-drill").is_displayed() and reasons == {"drill"}
