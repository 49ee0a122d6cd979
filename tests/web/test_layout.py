"""Layout and keyboard: no horizontal overflow at phone width (the margin goes under the editor),
Tab reaches the toolbar and the editor with a visible focus, the document list works by keyboard."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from tests.support.server_process import ROOT, ServerProcess
from tests.web.conftest import PHONE, doc_url, mint_token, wait_saved, wait_text

NO_OVERFLOW_JS = "() => document.documentElement.scrollWidth <= window.innerWidth"
FOCUSED_JS = """() => {
    const el = document.activeElement
    return el ? (el.getAttribute('aria-label') || el.className || el.tagName) : ''
}"""


def test_phone_width_has_no_horizontal_overflow(
    local_server: ServerProcess, open_page: Callable[..., Any], shot: Callable[[Any, str], Any]
) -> None:
    # sorts first: the list is paged by name and other tests share this server
    document = f"0-phone-{uuid.uuid4().hex[:8]}/a-rather-long-document-name-that-must-wrap"
    listing = open_page(f"{local_server.url}/#/", name="Ana", viewport=PHONE)
    listing.fill("#new-doc-name", document)
    listing.keyboard.press("Enter")
    listing.wait_for_selector(".save-status[data-state='saved']")
    listing.click(".cm-content")
    listing.keyboard.type("# A heading\n\n")
    listing.keyboard.insert_text("A long line of prose that wraps across the narrow screen. " * 4)
    wait_saved(listing)
    assert listing.evaluate(NO_OVERFLOW_JS)
    editor = listing.locator(".editor-column").bounding_box()
    margin = listing.locator("#comments").bounding_box()
    assert editor is not None and margin is not None
    assert margin["y"] >= editor["y"] + editor["height"] - 1, (
        "the comments margin should sit under the editor"
    )
    assert editor["width"] <= PHONE["width"]
    shot(listing, "phone-document")
    listing.goto(f"{local_server.url}/#/")
    listing.wait_for_selector(f".doc-link:has-text('{document}')")
    assert listing.evaluate(NO_OVERFLOW_JS)
    shot(listing, "phone-list")


def test_desktop_layout_puts_the_margin_beside_the_editor(
    local_server: ServerProcess, open_page: Callable[..., Any], shot: Callable[[Any, str], Any]
) -> None:
    page = open_page(doc_url(local_server, f"web/desk-{uuid.uuid4().hex[:8]}"), name="Ana")
    wait_saved(page)
    page.click(".cm-content")
    page.keyboard.type("# Title\n\nSome **bold** words.")
    wait_text(page, "text.includes('bold')")
    editor = page.locator(".editor-column").bounding_box()
    margin = page.locator("#comments").bounding_box()
    assert editor is not None and margin is not None
    assert margin["x"] >= editor["x"] + editor["width"] - 1
    assert page.evaluate(NO_OVERFLOW_JS)
    heading = page.locator(".cm-line", has_text="Title").evaluate(
        "e => getComputedStyle(e.querySelector('span')).fontSize"
    )
    body = page.locator(".cm-line", has_text="Some").evaluate("e => getComputedStyle(e).fontSize")
    assert float(heading.removesuffix("px")) > float(body.removesuffix("px"))  # headings look like headings
    assert page.locator(".cm-gutters").count() == 0  # no code-editor gutters
    shot(page, "desktop-document")


def test_tab_reaches_the_toolbar_then_the_editor(
    local_server: ServerProcess, open_page: Callable[..., Any], shot: Callable[[Any, str], Any]
) -> None:
    page = open_page(doc_url(local_server, f"web/keys-{uuid.uuid4().hex[:8]}"), name="Ana")
    wait_saved(page)
    seen: list[str] = []
    for _ in range(25):
        page.keyboard.press("Tab")
        seen.append(str(page.evaluate(FOCUSED_JS)))
        if seen[-1].startswith("Document text"):
            break
    assert "Bold" in seen, seen
    assert seen[-1].startswith("Document text"), seen
    assert seen.index("Bold") < len(seen) - 1
    page.keyboard.type("typed by keyboard")
    wait_text(page, "text === 'typed by keyboard'")
    # the toolbar works from the keyboard: one Tab stop, arrows move inside it
    page.keyboard.press("Control+a")
    page.keyboard.press("Control+b")
    wait_text(page, "text === '**typed by keyboard**'")
    page.keyboard.press("Shift+Tab")
    assert page.evaluate(FOCUSED_JS) == "Bold"
    page.keyboard.press("ArrowRight")
    assert page.evaluate(FOCUSED_JS) == "Italic"
    page.keyboard.press("End")
    assert page.evaluate(FOCUSED_JS) == "Link"
    page.keyboard.press("ArrowRight")
    assert page.evaluate(FOCUSED_JS) == "Bold"  # wraps around
    outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none", "focused buttons need a visible outline"
    shot(page, "keyboard-focus-on-bold")
    page.keyboard.press("Enter")  # un-bold the selection through the button
    wait_text(page, "text === 'typed by keyboard'")


AXE = ROOT / "client" / "web" / "node_modules" / "axe-core" / "axe.min.js"
AXE_RUN_JS = """async () => {
    const context = { exclude: [['#comments'], ['#facilitator']] }
    const result = await axe.run(context, { resultTypes: ['violations'] })
    return result.violations.map(v => {
        const where = v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', ')
        return `${v.impact} ${v.id}: ${where}`
    })
}"""


def axe_violations(page: Any) -> list[str]:
    """axe-core's accessibility violations on the page (the comments margin and the facilitator view,
    tested by their own module, left out)."""
    page.add_script_tag(path=str(AXE))
    return list(page.evaluate(AXE_RUN_JS))


def test_no_accessibility_violations_on_the_list_document_and_share_panel(
    secret_server: ServerProcess, open_page: Callable[..., Any]
) -> None:
    document = f"team/a11y-{uuid.uuid4().hex[:8]}"
    token = mint_token("olga", {"team/*": "owner"}, name="Olga")
    page = open_page(f"{secret_server.url}/#/", name="Olga", token=token)
    page.wait_for_selector(".create-form")
    assert axe_violations(page) == []
    page.goto(doc_url(secret_server, document))
    wait_saved(page)
    page.click(".cm-content")
    page.keyboard.type("# Heading\n\nSome *words*.")
    wait_saved(page)
    assert axe_violations(page) == []
    page.click("button.share-button")
    page.wait_for_selector("dialog.share-panel .access-list li")
    assert axe_violations(page) == []
