"""Two people editing one document in real Chromium: typing converges, presence shows, saves are acked."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

from tests.support.server_process import ServerProcess
from tests.web.conftest import doc_url, wait_saved, wait_text


def test_two_contexts_type_concurrently_and_converge(
    local_server: ServerProcess, open_page: Callable[..., Any], shot: Callable[[Any, str], Any]
) -> None:
    url = doc_url(local_server, f"web/converge-{uuid.uuid4().hex[:8]}")
    ana = open_page(url, name="Ana")
    bo = open_page(url, name="Bo")
    for page in (ana, bo):
        wait_saved(page)
    ana.click(".cm-content")
    ana.keyboard.type("Hello from Ana. ")
    wait_text(bo, "text.includes('Ana.')")
    bo.click(".cm-content")
    bo.keyboard.press("Control+End")
    for a, b in zip("abcdefghij", "0123456789", strict=True):  # neither waits for the other
        ana.keyboard.type(a)
        bo.keyboard.type(b)
    for page in (ana, bo):
        wait_saved(page)
    final = wait_text(ana, "text.length === 36")
    assert wait_text(bo, "text.length === 36") == final
    assert sorted(final) == sorted("Hello from Ana. abcdefghij0123456789")
    assert "abcdefghij" in final and "0123456789" in final  # each one's run stays together
    # presence: each sees the other in the participants list and as a named remote cursor
    ana.wait_for_selector(".participants li:has-text('Bo')")
    bo.wait_for_selector(".participants li:has-text('Bo (you)')")
    bo.wait_for_selector(".participants li:has-text('Ana')")
    ana.wait_for_selector(".cm-ySelectionInfo:has-text('Bo')", state="attached")
    shot(ana, "ana-converged")
    shot(bo, "bo-converged")


ACK = 100  # cocreate's ack message type (docs/PROTOCOL.md)


def test_saved_shows_only_after_the_server_acks(
    local_server: ServerProcess, open_page: Callable[..., Any], shot: Callable[[Any, str], Any]
) -> None:
    """Acks from the server are held back in flight: the edit reaches the other user, yet the
    writer's indicator says Saving… until the held acks are delivered."""
    held: list[bytes] = []
    holding = {"on": False}
    sockets: list[Any] = []

    def relay(route: Any) -> None:
        server = route.connect_to_server()
        sockets.append(route)

        def from_server(message: str | bytes) -> None:
            if holding["on"] and isinstance(message, bytes) and message[:1] == bytes([ACK]):
                held.append(message)
            else:
                route.send(message)

        server.on_message(from_server)

    url = doc_url(local_server, f"web/acks-{uuid.uuid4().hex[:8]}")
    ana = open_page(url, name="Ana", setup=lambda page: page.route_web_socket(re.compile(r"/ws/"), relay))
    bo = open_page(url, name="Bo")
    wait_saved(ana)
    wait_saved(bo)
    holding["on"] = True
    ana.click(".cm-content")
    ana.keyboard.type("unacknowledged words")
    wait_text(bo, "text.includes('unacknowledged words')")  # the server has the edit and relayed it
    ana.wait_for_selector(".save-status[data-state='saving']")
    assert held, "the server sent no ack to hold back"
    assert ana.inner_text(".save-status") == "Saving…"
    shot(ana, "saving-while-acks-held")
    holding["on"] = False
    for message in held:
        sockets[-1].send(message)
    wait_saved(ana)
    assert ana.inner_text(".save-status") == "Saved"
    shot(ana, "saved-after-acks")


def test_the_toolbar_inserts_markdown(
    local_server: ServerProcess, open_page: Callable[..., Any], shot: Callable[[Any, str], Any]
) -> None:
    page = open_page(doc_url(local_server, f"web/toolbar-{uuid.uuid4().hex[:8]}"), name="Ana")
    wait_saved(page)
    page.click(".cm-content")
    page.keyboard.type("Plan")
    steps = [
        ("Heading", "## Plan"),
        ("List", "- Plan"),  # replaces the heading marker
        ("Quote", "> Plan"),
        ("Quote", "Plan"),  # toggles off
    ]
    for button, expected in steps:
        page.click(f".toolbar button[aria-label='{button}']")
        wait_text(page, f"text === {expected!r}")
    page.keyboard.press("Control+a")
    page.click(".toolbar button[aria-label='Italic']")
    wait_text(page, "text === '*Plan*'")
    page.keyboard.press("End")
    page.keyboard.type(" see ")
    page.click(".toolbar button[aria-label='Link']")
    wait_text(page, "text === '*Plan* see [link text](https://)'")
    page.keyboard.type("example.org")  # the URL part was selected
    wait_text(page, "text === '*Plan* see [link text](example.org)'")
    wait_saved(page)
    shot(page, "toolbar-markdown")
