"""A real police page (waitress on a free port), a real dispatcher on an emulated modem, headless Chromium."""
from __future__ import annotations

import shutil
import tempfile
import threading
from pathlib import Path

import pytest

from gatewayd.config import EmulatedConfig
from gatewayd.db import make_engine, migrate
from gatewayd.store import Store
from tests.web.conftest import make_cfg, populate

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@pytest.fixture
def live(tmp_path):
    """(base_url, store): the page served by waitress and a Dispatcher draining the same SQLite file."""
    from waitress import create_server

    from gatewayd.channels.emulated import EmulatedChannel
    from gatewayd.dispatch import Dispatcher
    from web import create_app

    db = tmp_path / "gatewayd.db"
    migrate(f"sqlite:///{db}")
    cfg = make_cfg(db, default_language="nl")   # the appliance's default
    store = Store(make_engine(cfg.database.url), cfg.dispatch)
    store.seed_templates()          # what `gatewayd init-db` does after the migration
    populate(store)
    for i in range(20):   # enough recipients that the status page visibly moves
        store.add_member("Lindeknoppen", f"+3247550{i:04d}", f"Lid {i}", lang="nl" if i % 3 else "fr")
    app = create_app(cfg, store)
    server = create_server(app, host="127.0.0.1", port=0, threads=4)
    web_thread = threading.Thread(target=server.run, name="waitress", daemon=True)
    web_thread.start()
    dispatcher = Dispatcher(cfg.dispatch, store, [EmulatedChannel(EmulatedConfig(name="sim1", latency=0.01))],
                            node="test")
    dispatcher.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}", store
    finally:
        dispatcher.stop(timeout=30)
        server.close()
        web_thread.join(timeout=10)
        store.engine.dispose()


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="gatewayd-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--no-first-run",
                "--disable-sync", "--window-size=1280,900", f"--user-data-dir={profile}"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(60)
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
