"""Comments in the margin, in real Chromium: anchored on the right words while another person types
before and inside them; replies live; resolve collapses; deleting the words detaches the thread."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from tests.support.server_process import ServerProcess
from tests.web.conftest import PHONE, doc_url, mint_token, wait_saved, wait_text

HIGHLIGHT_TEXT_JS = """(id) => [...document.querySelectorAll('.cm-content [data-thread]')]
    .filter(e => id === null || e.dataset.thread === id)
    .map(e => {
        const copy = e.cloneNode(true)
        copy.querySelectorAll('.cm-ySelectionCaret, .cm-ySelectionInfo').forEach(c => c.remove())
        return copy.textContent.replace(/\\u2060/g, '')
    }).join('')"""


WIDER_THAN_VIEWPORT_JS = """() => [...document.querySelectorAll('#comments, #comments *')]
    .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
    .map(e => e.tagName + '.' + e.className)"""


def highlighted(page: Any, thread: str | None = None) -> str:
    """The editor text under a thread's highlight (all threads' when `thread` is None)."""
    return str(page.evaluate(HIGHLIGHT_TEXT_JS, thread))


def wait_highlight(page: Any, thread: str, expected: str) -> None:
    page.wait_for_function(f"(id) => ({HIGHLIGHT_TEXT_JS})(id) === {expected!r}", arg=thread, timeout=10_000)


def move_to(page: Any, offset: int, select: int = 0) -> None:
    """Caret to `offset` of the (one-line) text with the keyboard, then select `select` characters."""
    page.click(".cm-content")
    page.keyboard.press("Control+Home")
    for _ in range(offset):
        page.keyboard.press("ArrowRight")
    for _ in range(select):
        page.keyboard.press("Shift+ArrowRight")


def test_comment_stays_on_its_words_replies_resolve_and_detach(
    secret_server: ServerProcess, open_page: Callable[..., Any], shot: Callable[[Any, str], Any]
) -> None:
    url = doc_url(secret_server, f"web/comments-{uuid.uuid4().hex[:8]}")
    ana = open_page(url, name="Ana", token=mint_token("ana", {"web/*": "owner"}))
    bob = open_page(url, name="Bob", token=mint_token("bob", {"web/*": "editor"}))
    for page in (ana, bob):
        wait_saved(page)
    sentence = "The quick brown fox jumps over the lazy dog."
    ana.click(".cm-content")
    ana.keyboard.type(sentence)
    wait_text(bob, f"text === {sentence!r}")
    wait_saved(ana)

    # Ana selects "quick brown" and comments with the keyboard shortcut; Enter sends
    move_to(ana, 4, select=len("quick brown"))
    assert ana.is_enabled("button.cmt-new")
    ana.keyboard.press("Control+Alt+m")
    composer = ana.locator(".cmt-composer textarea")
    composer.wait_for()
    composer.type("Is it quick enough, @bob?")
    composer.press("Enter")
    card = ana.locator(".cmt-list .cmt-thread").first
    card.wait_for()
    thread = str(card.get_attribute("data-thread-id"))
    wait_highlight(ana, thread, "quick brown")
    wait_highlight(bob, thread, "quick brown")  # the other browser: same words
    bob.wait_for_selector(f"[data-thread-id='{thread}'] .cmt-mention:has-text('@bob')")
    shot(ana, "1-ana-commented")
    shot(bob, "1-bob-sees-thread")

    # Bob types before the range, then inside it: the highlight follows the words in both
    move_to(bob, 0)
    bob.keyboard.type("Hey! ")
    move_to(bob, len("Hey! The qu"))
    bob.keyboard.type("XY")
    expected_text = "Hey! The quXYick brown fox jumps over the lazy dog."
    for page in (ana, bob):
        wait_text(page, f"text === {expected_text!r}")
        wait_highlight(page, thread, "quXYick brown")
    shot(ana, "2-ana-after-bob-typed")
    shot(bob, "2-bob-after-typing")

    # clicking the thread selects its words in the editor
    ana.click(f"[data-thread-id='{thread}'] .cmt-quote")
    selected = ana.evaluate("() => getSelection().toString()")
    assert selected.replace("\u2060", "").endswith("ick brown")

    # Bob replies; Ana sees it live
    bob.fill(f"[data-thread-id='{thread}'] .cmt-reply textarea", "Quick enough for me")
    bob.press(f"[data-thread-id='{thread}'] .cmt-reply textarea", "Enter")
    ana.wait_for_selector(f"[data-thread-id='{thread}'] .cmt-comment:has-text('Quick enough for me')")
    shot(ana, "3-ana-sees-reply")

    # Ana resolves: collapsed under "Resolved" (closed <details>) and no longer highlighted, for Bob too
    ana.click(f"[data-thread-id='{thread}'] .cmt-resolve")
    for page in (ana, bob):
        page.wait_for_selector(f".cmt-resolved [data-thread-id='{thread}']", state="attached")
        page.wait_for_function("() => !document.querySelector('.cm-content [data-thread]')")
        assert not page.locator(f".cmt-resolved [data-thread-id='{thread}']").is_visible()
        assert page.locator(".cmt-resolved-toggle").inner_text() == "Resolved (1)"
    shot(bob, "4-bob-resolved-collapsed")

    # Bob reopens it from the collapsed list
    bob.click(".cmt-resolved-toggle")
    bob.click(f"[data-thread-id='{thread}'] .cmt-resolve")
    ana.wait_for_selector(f".cmt-list [data-thread-id='{thread}']")
    wait_highlight(ana, thread, "quXYick brown")

    # Bob deletes every character of the range: the thread moves to "Detached" in both browsers
    move_to(bob, len("Hey! The "), select=len("quXYick brown"))
    bob.keyboard.press("Delete")
    for page in (ana, bob):
        page.wait_for_selector(f".cmt-detached [data-thread-id='{thread}']")
        assert highlighted(page) == ""
    shot(ana, "5-ana-detached")
    shot(bob, "5-bob-detached")


def test_viewer_reads_threads_but_cannot_comment_at_phone_width(
    secret_server: ServerProcess, open_page: Callable[..., Any], shot: Callable[[Any, str], Any]
) -> None:
    url = doc_url(secret_server, f"web/viewer-{uuid.uuid4().hex[:8]}")
    ana = open_page(url, name="Ana", token=mint_token("ana", {"web/*": "owner"}))
    wait_saved(ana)
    ana.click(".cm-content")
    ana.keyboard.type("Read me carefully.")
    wait_saved(ana)
    move_to(ana, 0, select=len("Read me"))
    ana.click("button.cmt-new")
    ana.fill(".cmt-composer textarea", "A note for readers")
    ana.press(".cmt-composer textarea", "Enter")
    ana.wait_for_selector(".cmt-list .cmt-thread")

    viewer = open_page(url, name="Vi", token=mint_token("vi", {"web/*": "viewer"}), viewport=PHONE)
    viewer.wait_for_selector(".cmt-list .cmt-thread:has-text('A note for readers')")
    assert highlighted(viewer) == "Read me"
    assert viewer.locator("button.cmt-new").count() == 0
    assert viewer.locator(".cmt-reply, .cmt-resolve, .cmt-react-menu").count() == 0
    margin = viewer.locator("#comments").bounding_box()
    assert margin is not None and margin["width"] <= PHONE["width"]  # stacked under the editor, no overflow
    shot(viewer, "viewer-phone")
    wide = viewer.evaluate(WIDER_THAN_VIEWPORT_JS)
    assert not wide, f"wider than the phone: {wide}"
