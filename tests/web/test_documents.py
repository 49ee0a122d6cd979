"""The start page: signing in with a token, creating, opening and renaming documents."""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

from tests.support.server_process import ServerProcess
from tests.web.conftest import PageErrors, mint_token, wait_saved, wait_text


def test_create_open_and_rename_from_the_list(
    local_server: ServerProcess, open_page: Callable[..., Any], shot: Callable[[Any, str], Any]
) -> None:
    name = f"web/list-{uuid.uuid4().hex[:8]}"
    page = open_page(f"{local_server.url}/#/", name="Ana")
    page.fill("#new-doc-name", name)
    page.click(".create-form button[type=submit]")
    wait_saved(page)
    assert page.inner_text(".doc-title") == name
    page.click(".cm-content")
    page.keyboard.type("first words")
    wait_saved(page)
    page.click("a.home")
    page.click(f"button[aria-label='Rename {name}']")
    page.fill("#ask-input", f"{name}-renamed")
    page.keyboard.press("Enter")
    page.wait_for_selector(f".doc-link:text-is('{name}-renamed')")
    assert page.locator(f".doc-link:text-is('{name}')").count() == 0
    shot(page, "renamed")
    page.click(f".doc-link:text-is('{name}-renamed')")
    wait_text(page, "text === 'first words'")


def test_local_mode_asks_for_a_name_once(local_server: ServerProcess, open_page: Callable[..., Any]) -> None:
    page = open_page(f"{local_server.url}/#/", name=None)
    page.wait_for_selector("dialog[open] #ask-input")
    page.fill("#ask-input", "Zed")
    page.keyboard.press("Enter")
    page.wait_for_selector(".user-bar:has-text('Zed')")
    page.reload()
    page.wait_for_selector(".user-bar:has-text('Zed')")
    assert page.locator("dialog[open]").count() == 0


def test_sign_in_with_a_pasted_token(
    secret_server: ServerProcess,
    open_page: Callable[..., Any],
    page_errors: PageErrors,
    shot: Callable[[Any, str], Any],
) -> None:
    page_errors.allow(r"status of 401|HTTP 401 .*/api/me")  # asking who we are before signing in
    page = open_page(f"{secret_server.url}/#/", name="Ana")
    page.wait_for_selector("form.sign-in")
    shot(page, "sign-in")
    page.fill("#token-input", mint_token("ana", {"team/*": "editor"}, name="Ana A"))
    page.click("form.sign-in button[type=submit]")
    page.wait_for_selector(".user-bar:has-text('Ana A')")
    name = f"team/signed-{uuid.uuid4().hex[:8]}"
    page.fill("#new-doc-name", name)
    page.click(".create-form button[type=submit]")
    wait_saved(page)
    assert page.locator(".share-button").count() == 0  # editors do not manage access
    assert page.locator("a:has-text('History')").count() == 1


def test_the_list_pages_through_many_documents(
    local_server: ServerProcess, open_page: Callable[..., Any]
) -> None:
    prefix = f"web/many-{uuid.uuid4().hex[:8]}"
    names = [f"{prefix}/{index:03d}" for index in range(105)]
    for name in names:
        request = urllib.request.Request(
            f"{local_server.url}/api/documents",
            data=json.dumps({"name": name}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as reply:
            assert reply.status == 201
    page = open_page(f"{local_server.url}/#/", name="Ana")
    page.wait_for_selector(".doc-link")
    while page.is_visible("button.more"):
        shown = page.locator(".doc-link").count()
        page.click("button.more")
        page.wait_for_function(f"() => document.querySelectorAll('.doc-link').length > {shown}")
    listed = page.locator(".doc-link").all_inner_texts()
    assert set(names) <= set(listed)
    assert len(listed) == len(set(listed))
