"""Roles in the browser (server with a secret): a viewer cannot type; an owner shares through the
Share panel; a guest joins through the invite link and gets the invite's role."""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from tests.support.server_process import ServerProcess
from tests.web.conftest import PageErrors, doc_url, editor_text, mint_token, wait_saved, wait_text


def server_text(server: ServerProcess, document: str, token: str) -> str:
    request = urllib.request.Request(
        f"{server.url}/api/documents/{quote(document)}/-/content?root=content:text",
        headers={"Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=5) as reply:
        return str(json.load(reply)["roots"]["content"]["value"])


def test_a_viewer_cannot_type(
    secret_server: ServerProcess, open_page: Callable[..., Any], shot: Callable[[Any, str], Any]
) -> None:
    document = f"team/viewed-{uuid.uuid4().hex[:8]}"
    owner_token = mint_token("olga", {document: "owner"}, name="Olga")
    url = doc_url(secret_server, document)
    owner = open_page(url, name="Olga", token=owner_token)
    wait_saved(owner)
    owner.click(".cm-content")
    owner.keyboard.type("Written by the owner.")
    wait_saved(owner)

    viewer = open_page(url, name="Vic", token=mint_token("vic", {"team/*": "viewer"}, name="Vic"))
    wait_text(viewer, "text === 'Written by the owner.'")
    assert viewer.is_visible(".badge.view-only")
    # focusable (keyboard users select text to comment on); the read-only state blocks input below
    assert viewer.get_attribute(".cm-content", "contenteditable") == "true"
    assert viewer.get_attribute(".cm-content", "aria-readonly") == "true"
    assert viewer.locator(".toolbar button:enabled").count() == 0
    assert viewer.locator(".share-button").count() == 0
    viewer.click(".cm-content")
    viewer.keyboard.type("vandalism")
    viewer.keyboard.press("Backspace")
    viewer.keyboard.press("Enter")
    viewer.wait_for_selector(".participants li:has-text('Olga')")  # round trips happened meanwhile
    assert editor_text(viewer) == "Written by the owner."
    assert viewer.inner_text(".save-status") == "Up to date"
    shot(viewer, "viewer-cannot-type")
    owner.click(".cm-content")
    owner.keyboard.press("Control+End")
    owner.keyboard.type(" More.")
    wait_saved(owner)
    wait_text(viewer, "text === 'Written by the owner. More.'")
    assert server_text(secret_server, document, owner_token) == "Written by the owner. More."


def test_owner_shares_with_an_invite_link_and_a_guest_joins(
    secret_server: ServerProcess, open_page: Callable[..., Any], shot: Callable[[Any, str], Any]
) -> None:
    document = f"team/shared-{uuid.uuid4().hex[:8]}"
    owner_token = mint_token("olga", {document: "owner"}, name="Olga")
    owner = open_page(doc_url(secret_server, document), name="Olga", token=owner_token)
    wait_saved(owner)
    owner.click(".cm-content")
    owner.keyboard.type("Agenda")
    wait_saved(owner)

    owner.click("button.share-button")
    panel = owner.locator("dialog.share-panel")
    panel.wait_for()
    owner.fill("#grant-user", "bea")
    owner.select_option("#grant-role", "editor")
    owner.click(".grant-form button[type=submit]")
    panel.locator(".access-list li:has-text('bea')").wait_for()
    owner.select_option("#invite-role", "editor")
    owner.fill("#invite-uses", "1")
    owner.click(".invite-form button[type=submit]")
    link = owner.locator("#invite-link").input_value()
    assert link.startswith(f"{secret_server.url}/#invite=")
    panel.locator(".invite-list li:has-text('active')").wait_for()
    shot(owner, "share-panel")
    owner.click("dialog.share-panel button.close")

    guest = open_page(link, name="Gus")
    guest.fill("#guest-name", "Gus the Guest")
    guest.click(".sign-in button[type=submit]")
    wait_text(guest, "text === 'Agenda'")
    wait_saved(guest)
    assert guest.locator(".badge.view-only").count() == 0
    guest.click(".cm-content")
    guest.keyboard.press("Control+End")
    guest.keyboard.type(" from a guest")
    wait_saved(guest)
    wait_text(owner, "text === 'Agenda from a guest'")
    owner.wait_for_selector(".participants li:has-text('Gus the Guest')")
    shot(guest, "guest-editing")

    owner.click("button.share-button")  # revoking the invite ends the guest's access at once
    owner.click("dialog.share-panel button[aria-label='Revoke editor invite']")
    owner.locator("dialog.share-panel .invite-list li:has-text('revoked')").wait_for()
    guest.wait_for_selector(".banner:has-text('access to this document was removed')")
    shot(guest, "guest-after-revocation")


def test_removing_someone_from_the_access_list_closes_their_page(
    secret_server: ServerProcess, open_page: Callable[..., Any], shot: Callable[[Any, str], Any]
) -> None:
    document = f"team/revoked-{uuid.uuid4().hex[:8]}"
    owner_token = mint_token("olga", {document: "owner"}, name="Olga")
    owner = open_page(doc_url(secret_server, document), name="Olga", token=owner_token)
    wait_saved(owner)
    owner.click("button.share-button")
    owner.fill("#grant-user", "bea")
    owner.select_option("#grant-role", "editor")
    owner.click(".grant-form button[type=submit]")
    owner.locator(".access-list li:has-text('bea')").wait_for()

    bea = open_page(doc_url(secret_server, document), name="Bea", token=mint_token("bea", {}, name="Bea"))
    wait_saved(bea)
    bea.click(".cm-content")
    bea.keyboard.type("Bea was here")
    wait_saved(bea)
    owner.click("button[aria-label='Remove bea']")
    bea.wait_for_selector(".banner:has-text('access to this document was removed')")
    assert bea.get_attribute(".save-status", "data-state") == "closed"
    shot(bea, "access-removed")
    owner.click("dialog.share-panel button.close")
    wait_text(owner, "text === 'Bea was here'")


def test_an_expired_token_closes_the_page_and_offers_to_sign_in_again(
    secret_server: ServerProcess, open_page: Callable[..., Any], page_errors: PageErrors
) -> None:
    page_errors.allow(r"status of 401|HTTP 401 .*/api/me")  # asking who we are after signing out
    document = f"team/expiring-{uuid.uuid4().hex[:8]}"
    page = open_page(
        doc_url(secret_server, document), name="Eve", token=mint_token("eve", {"team/*": "editor"}, ttl=4)
    )
    wait_saved(page)
    page.wait_for_selector(".banner:has-text('Your access has expired')", timeout=10_000)
    assert page.get_attribute(".save-status", "data-state") == "closed"
    page.click(".banner button:has-text('Sign in again')")
    page.wait_for_selector("form.sign-in #token-input")
