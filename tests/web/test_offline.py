"""Offline editing: edits made without a connection are kept (also across a reload, in IndexedDB)
and reach the others when the connection is back; the indicator says so meanwhile."""

from __future__ import annotations

import re
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from tests.support.server_process import ServerProcess
from tests.web.conftest import doc_url, editor_text, wait_saved, wait_text

STORED_UPDATES_JS = """async (name) => await new Promise((resolve, reject) => {
    const request = indexedDB.open(name)
    request.onerror = () => reject(request.error)
    request.onsuccess = () => {
        const db = request.result
        const count = db.transaction('updates', 'readonly').objectStore('updates').count()
        count.onsuccess = () => { db.close(); resolve(count.result) }
    }
})"""


def test_offline_edits_sync_when_back_online(
    local_server: ServerProcess, open_page: Callable[..., Any], shot: Callable[[Any, str], Any]
) -> None:
    url = doc_url(local_server, f"web/offline-{uuid.uuid4().hex[:8]}")
    ana = open_page(url, name="Ana")
    bo = open_page(url, name="Bo")
    wait_saved(ana)
    wait_saved(bo)
    ana.click(".cm-content")
    ana.keyboard.type("Online. ")
    wait_text(bo, "text === 'Online. '")

    ana.context.set_offline(True)
    ana.wait_for_selector(".save-status[data-state='offline']")
    ana.keyboard.type("Written offline.")
    ana.wait_for_selector(".save-status[data-unsaved='true']")
    assert ana.inner_text(".save-status") == "Offline - changes kept"
    bo.keyboard.press("Control+End")
    bo.click(".cm-content")
    bo.keyboard.type("Bo meanwhile. ")  # a concurrent edit on the other side
    wait_saved(bo)
    assert "offline" not in editor_text(bo)
    shot(ana, "offline-with-changes")

    ana.context.set_offline(False)
    wait_saved(ana)
    wait_text(bo, "text.includes('Written offline.') && text.includes('Bo meanwhile. ')")
    final = wait_text(ana, "text.includes('Bo meanwhile. ')")
    assert final == editor_text(bo)
    shot(bo, "bo-got-offline-edits")


def test_edits_survive_a_reload_before_they_reach_the_server(
    local_server: ServerProcess, open_page: Callable[..., Any]
) -> None:
    document = f"web/reload-{uuid.uuid4().hex[:8]}"
    url = doc_url(local_server, document)
    cut = {"on": False}

    def maybe_cut(route: Any) -> None:
        if not cut["on"]:
            route.connect_to_server()
        # else: the socket opens but leads nowhere, so nothing is ever acknowledged

    ana = open_page(url, name="Ana", setup=lambda page: page.route_web_socket(re.compile(r"/ws/"), maybe_cut))
    wait_saved(ana)
    cut["on"] = True
    ana.reload()
    ana.wait_for_selector(".cm-content")
    ana.click(".cm-content")
    database = f"cocreate:127.0.0.1:{local_server.port}:{document}"  # sync.js names it so
    before = int(ana.evaluate(STORED_UPDATES_JS, database))
    ana.keyboard.type("kept locally")
    ana.wait_for_function(f"async () => (await ({STORED_UPDATES_JS})({database!r})) > {before}")
    assert ana.inner_text(".save-status") != "Saved"

    cut["on"] = False
    ana.reload()
    wait_text(ana, "text === 'kept locally'")
    wait_saved(ana)
    bo = open_page(url, name="Bo")
    wait_text(bo, "text === 'kept locally'")


def test_a_stale_local_copy_of_a_recreated_document_is_not_merged_back(
    local_server: ServerProcess, open_page: Callable[..., Any], shot: Callable[[Any, str], Any]
) -> None:
    document = f"web/epoch-{uuid.uuid4().hex[:8]}"
    url = doc_url(local_server, document)
    ana = open_page(url, name="Ana")
    wait_saved(ana)
    ana.click(".cm-content")
    ana.keyboard.type("old text")
    wait_saved(ana)
    ana.goto(f"{local_server.url}/#/")  # leaves the document; its copy stays in IndexedDB
    ana.wait_for_selector(".create-form")

    request = urllib.request.Request(f"{local_server.url}/api/documents/{quote(document)}", method="DELETE")
    with urllib.request.urlopen(request, timeout=5) as reply:
        assert reply.status == 204
    bo = open_page(url, name="Bo")
    wait_saved(bo)
    bo.click(".cm-content")
    bo.keyboard.type("new text")
    wait_saved(bo)

    ana.goto(url)
    ana.wait_for_selector(".banner:has-text('deleted or replaced')")
    shot(ana, "stale-copy-refused")
    ana.click(".banner button")
    wait_text(ana, "text === 'new text'")
    wait_saved(ana)
    assert wait_text(bo, "text === 'new text'") == "new text"
