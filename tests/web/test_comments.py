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


WORD_CENTER_JS = """(word) => {
    const walker = document.createTreeWalker(document.querySelector('.cm-content'), NodeFilter.SHOW_TEXT)
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        const at = node.data.indexOf(word)
        if (at < 0) continue
        const range = document.createRange()
        range.setStart(node, at)
        range.setEnd(node, at + word.length)
        const box = range.getBoundingClientRect()
        return [box.x + box.width / 2, box.y + box.height / 2]
    }
    throw new Error('word not in the editor: ' + word)
}"""


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
    bob.wait_for_selector(f".cmt-thread.cmt-active[data-thread-id='{thread}']")  # his caret is in its words
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

    # Ana answers with an @mention picked from the suggestions (Enter picks, Enter again sends)
    reply = ana.locator(f"[data-thread-id='{thread}'] .cmt-reply textarea")
    reply.type("Thanks @b")
    ana.wait_for_selector(f"[data-thread-id='{thread}'] .cmt-mention-list [role='option']:has-text('@bob')")
    reply.press("Enter")
    assert reply.input_value() == "Thanks @bob "
    reply.press("Enter")
    bob.wait_for_selector(f"[data-thread-id='{thread}'] .cmt-comment:has-text('Thanks') .cmt-mention")

    # Bob reacts to Ana's first comment, Ana sees the count; Ana edits her comment, Bob sees the edit
    first = f"[data-thread-id='{thread}'] .cmt-comment >> nth=0"
    bob.click(f"{first} >> .cmt-react-menu summary")
    bob.click(f"{first} >> button[aria-label='React with 👍']")
    ana.wait_for_selector(f"[data-thread-id='{thread}'] .cmt-reaction:has-text('👍 1')")
    ana.click(f"{first} >> button:has-text('Edit')")
    edit = ana.locator(f"[data-thread-id='{thread}'] .cmt-comment textarea").first
    edit.fill("Is it quick enough now, @bob?")
    edit.press("Enter")
    bob.wait_for_selector(
        f"[data-thread-id='{thread}'] .cmt-comment:has-text('quick enough now') .cmt-edited"
    )
    assert bob.locator(f"{first} >> button:has-text('Edit')").count() == 0  # not Bob's to edit
    shot(bob, "3-bob-sees-reaction-and-edit")

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


def test_commenter_comments_and_viewer_only_reads_at_phone_width(
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

    # a commenter cannot type but selects a word with the mouse and comments on it
    carol = open_page(url, name="Carol", token=mint_token("carol", {"web/*": "commenter"}), viewport=PHONE)
    carol.wait_for_selector(".cmt-list .cmt-thread")
    x, y = carol.evaluate(WORD_CENTER_JS, "carefully")
    carol.mouse.dblclick(x, y)
    carol.click("button.cmt-new")
    carol.fill(".cmt-composer textarea", "Why carefully?")
    carol.press(".cmt-composer textarea", "Enter")
    ana.wait_for_selector(".cmt-list .cmt-thread:has-text('Why carefully?')")
    wait_text(carol, "text === 'Read me carefully.'")
    shot(carol, "commenter-phone")

    viewer = open_page(url, name="Vi", token=mint_token("vi", {"web/*": "viewer"}), viewport=PHONE)
    viewer.wait_for_selector(".cmt-list .cmt-thread:has-text('A note for readers')")
    viewer.wait_for_selector(".cmt-list .cmt-thread:has-text('Why carefully?')")
    first, second = viewer.locator(".cmt-list .cmt-thread").all()  # in document order
    wait_highlight(viewer, str(first.get_attribute("data-thread-id")), "Read me")
    wait_highlight(viewer, str(second.get_attribute("data-thread-id")), "carefully")
    assert viewer.locator("button.cmt-new").count() == 0
    assert viewer.locator(".cmt-reply, .cmt-resolve, .cmt-react-menu").count() == 0
    margin = viewer.locator("#comments").bounding_box()
    assert margin is not None and margin["width"] <= PHONE["width"]  # stacked under the editor, no overflow
    shot(viewer, "viewer-phone")
    wide = viewer.evaluate(WIDER_THAN_VIEWPORT_JS)
    assert not wide, f"wider than the phone: {wide}"
