"""Renewing epochs (after a restore) and recognising copies of a retired epoch by their clocks."""

from __future__ import annotations

from typing import Any

from pycrdt import Doc, Text

from persistence.base import NewUpdate
from persistence.memory import MemoryStorage
from server.epochs import is_stale, renew_epochs, retired_clocks

T0 = 1_700_000_000.0


async def test_renewed_documents_remember_their_clocks_and_others_are_untouched() -> None:
    storage = MemoryStorage()
    doc: Doc[Any] = Doc(client_id=77)
    updates = []
    doc.observe(lambda event: updates.append(event.update))
    doc.get("t", type=Text).insert(0, "restored")
    names = ["team/a", "team/b", "teamwork", "zz"]
    records = {name: await storage.create_document(name, T0) for name in names}
    await storage.append_updates(records["team/a"].id, [NewUpdate(updates[0], "ana", T0)])

    renewed = await renew_epochs(storage, "team/", lambda: T0 + 1, page=1)  # paged: 1 per query
    assert [(before.name, after.name) for before, after in renewed] == [("team/a", "team/a"), ("team/b",) * 2]
    assert all(before.epoch != after.epoch for before, after in renewed)
    assert (await storage.get_document("teamwork")) == records["teamwork"]
    retired = await retired_clocks(storage, "team/a")
    assert retired == {77: 8}
    assert await retired_clocks(storage, "team/b") == {}  # renewed, but nobody had written
    assert is_stale({77: 9}, {77: 8}, retired)  # an edit of client 77 made after the backup
    assert not is_stale({77: 8, 5: 3}, {77: 8}, retired)  # the restored state, and a new client
    assert len(await renew_epochs(storage, "", lambda: T0 + 2)) == len(names)
