"""Browser fixtures: built assets, real servers (local mode and with a secret), Debian's chromium
driven by Playwright, pages that fail the test on any console or page error, screenshots, tokens."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from server.tokens import issue, role_named
from tests.support.server_process import ROOT, ServerProcess

playwright_sync = pytest.importorskip("playwright.sync_api")

DIST = ROOT / "client" / "web" / "dist"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
SECRET = "web-tests-secret-0123456789abcdef0123456789"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def _require_chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed (CI=true: the browser tests must run)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return path


@pytest.fixture(scope="session")
def built_app() -> Path:
    """client/web/dist, built with `make web` when it is missing or older than the sources."""
    result = subprocess.run(["make", "-s", "web"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    if result.returncode != 0 or not (DIST / "index.html").is_file():
        pytest.fail(f"`make web` failed:\n{result.stdout}\n{result.stderr}")
    return DIST


@pytest.fixture(scope="package")  # Playwright's sync API holds an event loop: end it with tests/web
def browser(built_app: Path) -> Iterator[Any]:
    executable = _require_chromium()
    with playwright_sync.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable, headless=True, args=["--no-sandbox"]
        )
        try:
            yield launched
        finally:
            launched.close()


def _server(tmp: Path, env: dict[str, str]) -> Iterator[ServerProcess]:
    url = f"sqlite+aiosqlite:///{tmp / 'cocreate.db'}"
    process = ServerProcess(db_url=url, data_dir=tmp, env=env).start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="package")
def local_server(built_app: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server in local mode (no secret: everyone is the owner). Tests use their own documents."""
    yield from _server(tmp_path_factory.mktemp("web-local"), {"COCREATE_SECRET": ""})


@pytest.fixture(scope="package")
def secret_server(built_app: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server with a secret: every request needs a token (see `mint_token`)."""
    yield from _server(tmp_path_factory.mktemp("web-secret"), {"COCREATE_SECRET": SECRET})


def mint_token(user: str, grants: dict[str, str], name: str | None = None, ttl: float = 600) -> str:
    """A token signed with `SECRET`, e.g. `mint_token("ana", {"team/*": "editor"})`."""
    roles = {pattern: role_named(role) for pattern, role in grants.items()}
    return issue(user, name or user.title(), roles, now=time.time(), ttl=ttl, secret=SECRET)


def doc_url(server: ServerProcess, document: str, suffix: str = "") -> str:
    return f"{server.url}/#/doc/{quote(document, safe='')}{suffix}"


@dataclass
class PageErrors:
    """Console errors and uncaught page errors seen by a test's pages; some may be expected."""

    seen: list[str] = field(default_factory=list)
    allowed: list[re.Pattern[str]] = field(default_factory=list)

    def allow(self, pattern: str) -> None:
        self.allowed.append(re.compile(pattern))

    def record(self, where: str, text: str) -> None:
        if not any(pattern.search(text) for pattern in self.allowed):
            self.seen.append(f"{where}: {text}")


@pytest.fixture
def page_errors() -> PageErrors:
    return PageErrors()


@pytest.fixture
def open_page(browser: Any, page_errors: PageErrors) -> Iterator[Callable[..., Any]]:
    """`open_page(url, name="Ana", token=None, viewport=DESKTOP, setup=None)`: a page in a fresh
    browser context (its own storage: another user), signed in with `token` if given; `setup(page)`
    runs before navigating. Any console error, page error or HTTP error fails the test at teardown."""
    contexts: list[Any] = []

    def open_one(
        url: str,
        name: str | None = "Ana",
        token: str | None = None,
        viewport: dict[str, int] | None = None,
        setup: Callable[[Any], None] | None = None,
    ) -> Any:
        context = browser.new_context(viewport=viewport or DESKTOP)
        if name is not None:  # else local mode asks for it
            context.add_init_script(f"localStorage.setItem('cocreate.name', {name!r})")
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        label = f"{name}@{len(contexts)}"
        page.on(
            "console",
            lambda message: page_errors.record(label, message.text) if message.type == "error" else None,
        )
        page.on(
            "response",
            lambda response: (
                page_errors.record(label, f"HTTP {response.status} {response.url}")
                if response.status >= 400
                else None
            ),
        )
        page.on("pageerror", lambda error: page_errors.record(label, f"page error: {error}"))
        if setup is not None:  # e.g. page.route_web_socket(...) before anything connects
            setup(page)
        if token is not None:
            page.goto(f"{url.split('#')[0]}#token={token}")
            page.wait_for_function("() => location.hash === '#/'")
        page.goto(url)
        return page

    yield open_one
    for context in contexts:
        context.close()
    assert not page_errors.seen, "errors in the browser console:\n" + "\n".join(page_errors.seen)


@pytest.fixture
def shot(request: pytest.FixtureRequest) -> Callable[[Any, str], Path]:
    """`shot(page, "step")` saves tests/web/artifacts/<test>-<step>.png and returns its path."""
    test = re.sub(r"[^\w.-]+", "_", request.node.name)

    def save(page: Any, step: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        clean_step = re.sub(r"[^\w.-]+", "_", step)
        path = ARTIFACTS / f"{test}-{clean_step}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return save


EDITOR_TEXT_JS = """() => [...document.querySelectorAll('.cm-content .cm-line')].map(line => {
    const copy = line.cloneNode(true)
    copy.querySelectorAll('.cm-ySelectionCaret, .cm-ySelectionInfo').forEach(e => e.remove())
    return copy.textContent.replace(/\\u2060/g, '')
}).join('\\n')"""


def editor_text(page: Any) -> str:
    """The editor's text as the user sees it (one `.cm-line` per line, remote cursors left out)."""
    return str(page.evaluate(EDITOR_TEXT_JS))


def wait_text(page: Any, predicate_js: str, timeout: float = 10_000) -> str:
    """Wait until `predicate_js` (a JS expression over `text`, the editor's text) holds; return the text."""
    page.wait_for_function(
        f"() => {{ const text = ({EDITOR_TEXT_JS})(); return {predicate_js} }}", timeout=timeout
    )
    return editor_text(page)


def wait_saved(page: Any, timeout: float = 10_000) -> None:
    page.wait_for_selector(".save-status[data-state='saved']", timeout=timeout)
