"""Browser tests drive the system's Chromium (Debian's `chromium` package) through Playwright.

Without Chromium they are skipped with a note, unless LOUPE_REQUIRE_BROWSER=1 (CI), where a missing
browser is an error rather than a silently smaller test run.
"""

import os
import shutil
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in the test thread; Django refuses ORM calls from a thread
# with a running loop unless told this is deliberate. The ORM calls here are the test's own.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
HERE = Path(__file__).parent

# The review page's project, model and iteration fixtures, shared by every browser test module here
# (one definition to change when the domain changes).
from tests.browser.test_review_page import iteration, model, project  # noqa: E402, F401


def pytest_collection_modifyitems(config, items):
    mine = [item for item in items if Path(str(item.fspath)).parent == HERE]
    for item in mine:
        item.add_marker(pytest.mark.browser)
    if not mine or shutil.which("chromium"):
        return
    if os.environ.get("LOUPE_REQUIRE_BROWSER") == "1":
        raise pytest.UsageError(
            "LOUPE_REQUIRE_BROWSER=1 but `chromium` is not on PATH: install it (apt-get install -y chromium)."
        )
    reason = "chromium is not installed (apt-get install -y chromium); browser tests need it"
    for item in mine:
        item.add_marker(pytest.mark.skipif(True, reason=reason))


@pytest.fixture(scope="session")
def chromium(live_server):
    # Depending on live_server makes the browser close (and drop its keep-alive connections) before
    # the server stops, so no request thread outlives the server's shared test database connection.
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=shutil.which("chromium"), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def login_page(chromium, live_server, client):
    """A function returning a fresh page logged in as the given user."""
    contexts = []

    def open_as(user, *, width=1280, height=800):
        client.force_login(user)
        context = chromium.new_context(viewport={"width": width, "height": height})
        context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value,
                              "url": live_server.url}])
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(5000)
        return page

    yield open_as
    for context in contexts:
        context.close()
