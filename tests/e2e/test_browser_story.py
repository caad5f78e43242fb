"""The demo's story in a real headless browser, and the admin console that tells it.

Signs ``alice`` in at the app, logs her out at the IdP, watches the app's page lose her
session (CAEP session-revoked pushed by the IdP, processed by the app's worker), then
signs in to the app's admin as an operator: the receiver stream's health shows the
processed SET, and the received-SET log shows the short event name and the action taken.

Debian's ``chromium`` is driven by Playwright (``executable_path``; no downloaded
browser). Screenshots are kept under ``$SSF_TEST_ARTIFACTS`` (default: the test's
temporary directory); the path is printed.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from example_project.demo import ADMIN_PASSWORD, ADMIN_USER, DEMO_PASSWORD, DEMO_USER, Demo

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
WAIT_SECONDS = 60


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = os.environ.get("SSF_TEST_ARTIFACTS")
    path = Path(base) / "browser" if base else tmp_path_factory.mktemp("browser-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    print(f"browser screenshots in {path}")
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright is not installed: pip install playwright (scripts/test does)",
                    pytrace=False)
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (scripts/test does)",
                    pytrace=False)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _sign_in(page, url: str, username: str, password: str) -> None:
    page.goto(url)
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_load_state()


def test_revocation_story_and_the_admin_that_tells_it(deployment: Demo, browser, artifacts):
    idp, app = deployment.idp, deployment.app
    app_user = browser.new_context()
    idp_user = browser.new_context()
    operator = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        # 1. alice signs in at the app.
        page = app_user.new_page()
        _sign_in(page, app.url("/login/"), DEMO_USER, DEMO_PASSWORD)
        page.goto(app.url("/"))
        assert f"Signed in as {DEMO_USER}" in page.inner_text("body")
        page.screenshot(path=artifacts / "1-app-signed-in.png", full_page=True)

        # 2. ... and logs out at the IdP, which emits CAEP session-revoked to the app.
        idp_page = idp_user.new_page()
        _sign_in(idp_page, idp.url("/login/"), DEMO_USER, DEMO_PASSWORD)
        idp_page.goto(idp.url("/"))
        idp_page.click(f"text=Log out {DEMO_USER}")
        idp_page.wait_for_load_state()
        idp_page.screenshot(path=artifacts / "2-idp-logged-out.png", full_page=True)

        # 3. The app's page loses her session (reloading until the signal has arrived).
        deadline = time.monotonic() + WAIT_SECONDS
        while "You are not signed in" not in page.inner_text("body"):
            assert time.monotonic() < deadline, "the app never ended alice's session"
            page.wait_for_timeout(500)
            page.reload()
        page.screenshot(path=artifacts / "3-app-session-ended.png", full_page=True)

        # 4. The operator opens the app's admin: its header names the site.
        admin = operator.new_page()
        _sign_in(admin, app.url("/admin/login/"), ADMIN_USER, ADMIN_PASSWORD)
        assert f"{app.title}: administration" in admin.inner_text("#header")
        index = admin.inner_text("#content").lower()  # captions are shown upper-case
        assert "ssf receiving: transmitters and streams" in index
        assert "ssf sending: receivers and streams" in index
        admin.screenshot(path=artifacts / "4-admin-index.png", full_page=True)

        # 5. The receiver stream's health: the processed SET is counted.
        stream_id = deployment.app_stream["id"]
        admin.goto(app.url(f"/admin/ssf_receiver/receiverstream/{stream_id}/change/"))
        health = admin.inner_text(".field-health_display").lower()
        assert "last hour" in health and "processed" in health
        assert re.search(r"last hour\s+\d+\s+[1-9]\d*", health), health
        admin.screenshot(path=artifacts / "5-receiver-stream-health.png", full_page=True)

        # 6. The received-SET log: short event name and the action taken, in the list.
        admin.goto(app.url("/admin/ssf_receiver/inboundset/"))
        log = admin.inner_text("#result_list")
        assert "caep/session-revoked" in log
        assert re.search(rf"ended [1-9]\d* session\(s\) of {DEMO_USER}", log), log
        admin.screenshot(path=artifacts / "6-received-sets.png", full_page=True)
    finally:
        for context in (app_user, idp_user, operator):
            context.close()
