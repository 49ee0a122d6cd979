"""The facilitator view in real Chromium: the slider shows an earlier state, play reaches the end, a
session's summary renders as a chart, bookmarks seek, and an owner restores an earlier moment."""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from tests.support.server_process import ServerProcess
from tests.web.conftest import PHONE, doc_url, wait_saved, wait_text

FACILITATOR_TEXT_JS = "() => document.querySelector('.fac-doc').textContent"
WIDER_THAN_VIEWPORT_JS = """() => [...document.querySelectorAll('.fac, .fac *')]
    .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
    .map(e => e.tagName + '.' + e.className)"""


def api(server: ServerProcess, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        server.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


def wait_moment(page: Any, seq: int, playing: bool = False) -> str:
    """Wait until the view shows edit `seq` (and has stopped playing); return the shown text."""
    page.wait_for_selector(f".fac[data-seq='{seq}'][data-playing='{str(playing).lower()}']", timeout=15_000)
    return str(page.evaluate(FACILITATOR_TEXT_JS))


def test_slider_play_summary_bookmark_and_restore(
    local_server: ServerProcess, open_page: Callable[..., Any], shot: Callable[[Any, str], Any]
) -> None:
    name = f"web/history-{uuid.uuid4().hex[:8]}"
    path = "/api/documents/" + quote(name, safe="/")
    url = doc_url(local_server, name)
    page = open_page(url, name="Ana")
    wait_saved(page)
    session = api(local_server, "POST", f"{path}/-/sessions", {"name": "Workshop"})
    page.click(".cm-content")
    page.keyboard.type("Alpha. ")
    wait_saved(page)
    alpha_seq = api(local_server, "GET", path)["last_seq"]
    page.keyboard.type("Beta. Gamma.")
    final = wait_text(page, "text === 'Alpha. Beta. Gamma.'")
    wait_saved(page)
    final_seq = api(local_server, "GET", path)["last_seq"]
    assert 0 < alpha_seq < final_seq
    api(local_server, "POST", f"{path}/-/sessions/{session['id']}/end")

    page.goto(url + "/history")
    assert wait_moment(page, final_seq) == final
    # the session's summary chart: one participant, the characters they inserted
    bar = page.locator(".fac-chart svg.chart .chart-bar[data-series='written']").first
    bar.wait_for()
    assert bar.get_attribute("data-value") == str(len(final))
    assert "Workshop" in str(page.locator(".fac-chart svg.chart").get_attribute("aria-label"))
    shot(page, "1-final-with-summary")

    # keyboard on the slider: Home, then right arrow to the moment "Alpha. " was saved
    slider = page.locator("#fac-slider")
    slider.focus()
    page.keyboard.press("Home")
    wait_moment(page, 0)
    for _ in range(alpha_seq):
        page.keyboard.press("ArrowRight")
    assert wait_moment(page, alpha_seq) == "Alpha. "
    shot(page, "2-earlier-moment")

    # play at 100x from there to the end
    page.click(".fac-speed[data-speed='100']")
    page.click(".fac-play")
    assert wait_moment(page, final_seq) == final
    shot(page, "3-played-to-the-end")

    # a bookmark at the end; going back to "Alpha. " and clicking it seeks to it
    page.fill("#fac-bookmark-label", "All three words")
    page.click("button:has-text('Add bookmark')")
    mark = page.locator(".fac-bookmarks button:has-text('All three words')")
    mark.wait_for()
    slider.focus()
    page.keyboard.press("Home")
    wait_moment(page, 0)
    mark.click()
    assert wait_moment(page, int(str(mark.get_attribute("data-seq")))) == final

    # restore "Alpha. " (owner): confirm in the dialog; the live document reads "Alpha. " again
    slider.focus()
    page.keyboard.press("Home")
    for _ in range(alpha_seq):
        page.keyboard.press("ArrowRight")
    wait_moment(page, alpha_seq)
    page.click(".fac-restore")
    dialog = page.locator("dialog.fac-dialog")
    dialog.wait_for()
    shot(page, "4-restore-dialog")
    dialog.locator("button[value='restore']").click()
    page.wait_for_selector(f".fac-notice:has-text('Restored edit {alpha_seq}')")
    content = api(local_server, "GET", f"{path}/-/content")
    assert content["roots"]["content"]["value"] == "Alpha. "
    shot(page, "5-restored")

    # phone width: the panels stack under the document, nothing sticks out sideways
    page.set_viewport_size(PHONE)
    wide = page.evaluate(WIDER_THAN_VIEWPORT_JS)
    assert not wide, f"wider than the phone: {wide}"
    shot(page, "6-phone")
