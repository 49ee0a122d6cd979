"""The `Storage` contract, run against every backend: memory, SQLite, PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from persistence.base import (
    DocumentExists,
    DocumentNotFound,
    NewUpdate,
    Snapshot,
    Storage,
    StoredUpdate,
)

T0 = 1_700_000_000.125


def upd(data: bytes, author: str = "alice", at: float = T0) -> NewUpdate:
    return NewUpdate(data=data, author=author, created_at=at)


def payloads(updates: list[StoredUpdate]) -> list[bytes]:
    return [u.data for u in updates]


# -- liveness -------------------------------------------------------------------------------------


async def test_ping_answers_when_the_backend_is_up(storage: Storage) -> None:
    assert await storage.ping() is None


# -- documents ------------------------------------------------------------------------------------


async def test_create_returns_a_fresh_record(storage: Storage) -> None:
    record = await storage.create_document("notes", T0)
    assert record.name == "notes"
    assert len(record.id) == 32 and int(record.id, 16) >= 0
    assert len(record.epoch) == 32 and record.epoch != record.id
    assert (record.created_at, record.updated_at) == (T0, T0)
    assert (record.last_seq, record.log_bytes, record.last_author) == (0, 0, None)
    assert await storage.get_document("notes") == record


async def test_ids_and_epochs_are_unique(storage: Storage) -> None:
    records = [await storage.create_document(f"d{i}", T0) for i in range(20)]
    assert len({r.id for r in records}) == 20
    assert len({r.epoch for r in records}) == 20


async def test_create_existing_name_raises(storage: Storage) -> None:
    await storage.create_document("notes", T0)
    with pytest.raises(DocumentExists):
        await storage.create_document("notes", T0 + 1)


async def test_get_unknown_is_none(storage: Storage) -> None:
    assert await storage.get_document("nope") is None


async def test_list_sorts_by_code_point(storage: Storage) -> None:
    names = ["b", "a", "B", "a/b", "a-b", "ä", "Z", "é", "日本", "😀", "a b"]
    for name in names:
        await storage.create_document(name, T0)
    listed = [r.name for r in await storage.list_documents()]
    assert listed == sorted(names)


async def test_live_documents_by_id_leaves_out_deleted_and_unknown_ids(storage: Storage) -> None:
    a = await storage.create_document("team/a", 1.0)
    b = await storage.create_document("team/b", 1.0)
    await storage.delete_document("team/b", 2.0)
    c = await storage.create_document("team/b", 3.0)  # the name again: another document
    found = await storage.live_documents_by_id([a.id, b.id, c.id, a.id, "no-such-id"])
    assert {i: r.name for i, r in found.items()} == {a.id: "team/a", c.id: "team/b"}
    assert await storage.live_documents_by_id([]) == {}


async def test_list_prefix_after_limit(storage: Storage) -> None:
    for name in ["team/a", "team/b", "team/c", "teamx", "tea", "other/a", "Team/a"]:
        await storage.create_document(name, T0)
    assert [r.name for r in await storage.list_documents(prefix="team/")] == ["team/a", "team/b", "team/c"]
    assert [r.name for r in await storage.list_documents(prefix="team")] == [
        "team/a", "team/b", "team/c", "teamx",
    ]  # fmt: skip
    assert [r.name for r in await storage.list_documents(prefix="team/", after="team/a")] == [
        "team/b", "team/c",
    ]  # fmt: skip
    assert [r.name for r in await storage.list_documents(prefix="team/", limit=2)] == ["team/a", "team/b"]
    assert [r.name for r in await storage.list_documents(after="team/c")] == ["teamx"]
    assert [r.name for r in await storage.list_documents(after="zzz")] == []
    assert await storage.list_documents(limit=0) == []
    assert [r.name for r in await storage.list_documents(prefix="Team")] == ["Team/a"]  # case-sensitive
    assert await storage.list_documents(prefix="nothing") == []


async def test_list_pages_through_everything(storage: Storage) -> None:
    names = sorted(f"doc-{i:03d}" for i in range(45))
    for name in reversed(names):
        await storage.create_document(name, T0)
    seen: list[str] = []
    after = ""
    while page := await storage.list_documents(after=after, limit=10):
        seen.extend(r.name for r in page)
        after = page[-1].name
    assert seen == names


async def test_list_prefix_is_literal_not_a_pattern(storage: Storage) -> None:
    for name in ["a%b", "axb", "a_b", "a\\b", "a[b"]:
        await storage.create_document(name, T0)
    assert [r.name for r in await storage.list_documents(prefix="a%")] == ["a%b"]
    assert [r.name for r in await storage.list_documents(prefix="a_")] == ["a_b"]
    assert [r.name for r in await storage.list_documents(prefix="a\\")] == ["a\\b"]
    assert [r.name for r in await storage.list_documents(prefix="a[")] == ["a[b"]


async def test_list_prefix_at_the_top_of_unicode(storage: Storage) -> None:
    top = chr(0x10FFFF)
    for name in ["x" + top, "x" + top + "a", "y", "x\ud7ffz", "x\ue000"]:
        await storage.create_document(name, T0)
    assert [r.name for r in await storage.list_documents(prefix="x" + top)] == ["x" + top, "x" + top + "a"]
    assert [r.name for r in await storage.list_documents(prefix="x\ud7ff")] == ["x\ud7ffz"]


async def test_unicode_names_round_trip(storage: Storage) -> None:
    names = ["日本語/ドキュメント", "📝 notes 🚀", "e\u0301 combining", "עברית", "Ω≈ç√∫", "tab\tand space "]
    for name in names:
        record = await storage.create_document(name, T0)
        assert (await storage.get_document(name)) == record
    renamed = await storage.rename_document("📝 notes 🚀", "📓 carnet", T0 + 1)
    assert renamed.name == "📓 carnet"
    assert await storage.get_document("📝 notes 🚀") is None
    assert [r.name for r in await storage.list_documents(prefix="日本")] == ["日本語/ドキュメント"]


async def test_names_are_not_normalised(storage: Storage) -> None:
    composed, decomposed = "caf\u00e9", "cafe\u0301"
    a = await storage.create_document(composed, T0)
    b = await storage.create_document(decomposed, T0)
    assert a.id != b.id
    assert (await storage.get_document(composed)) == a


# -- rename ---------------------------------------------------------------------------------------


async def test_rename_keeps_id_epoch_and_log(storage: Storage) -> None:
    record = await storage.create_document("old", T0)
    await storage.append_updates(record.id, [upd(b"one"), upd(b"two", "bob", T0 + 1)])
    renamed = await storage.rename_document("old", "new", T0 + 5)
    assert (renamed.id, renamed.epoch, renamed.name) == (record.id, record.epoch, "new")
    assert (renamed.last_seq, renamed.log_bytes, renamed.last_author) == (2, 6, "bob")
    assert (renamed.created_at, renamed.updated_at) == (T0, T0 + 5)
    assert await storage.get_document("old") is None
    assert await storage.get_document("new") == renamed
    assert payloads(await storage.read_updates(record.id)) == [b"one", b"two"]
    assert [r.name for r in await storage.list_documents()] == ["new"]
    await storage.create_document("old", T0 + 6)  # the old name is free again


async def test_rename_unknown_raises_not_found(storage: Storage) -> None:
    with pytest.raises(DocumentNotFound):
        await storage.rename_document("ghost", "other", T0)


async def test_rename_onto_a_live_name_raises_exists(storage: Storage) -> None:
    a = await storage.create_document("a", T0)
    b = await storage.create_document("b", T0)
    with pytest.raises(DocumentExists):
        await storage.rename_document("a", "b", T0 + 1)
    with pytest.raises(DocumentExists):  # onto itself: the name is taken (by itself)
        await storage.rename_document("a", "a", T0 + 1)
    assert await storage.get_document("a") == a
    assert await storage.get_document("b") == b


async def test_rename_onto_a_deleted_name_is_allowed(storage: Storage) -> None:
    gone = await storage.create_document("b", T0)
    await storage.delete_document("b", T0 + 1)
    await storage.create_document("a", T0)
    renamed = await storage.rename_document("a", "b", T0 + 2)
    assert renamed.id != gone.id
    assert await storage.get_document("b") == renamed


async def test_rename_a_deleted_document_raises_not_found(storage: Storage) -> None:
    await storage.create_document("a", T0)
    await storage.delete_document("a", T0 + 1)
    with pytest.raises(DocumentNotFound):
        await storage.rename_document("a", "c", T0 + 2)


# -- delete ---------------------------------------------------------------------------------------


async def test_delete_frees_the_name_and_keeps_history(storage: Storage) -> None:
    old = await storage.create_document("doc", T0)
    await storage.append_updates(old.id, [upd(b"a"), upd(b"b")])
    await storage.save_snapshot(old.id, Snapshot(2, b"state-2", T0))
    await storage.delete_document("doc", T0 + 1)
    assert await storage.get_document("doc") is None
    assert await storage.list_documents() == []
    with pytest.raises(DocumentNotFound):
        await storage.append_updates(old.id, [upd(b"c")])
    with pytest.raises(DocumentNotFound):
        await storage.append_updates(old.id, [])

    new = await storage.create_document("doc", T0 + 2)
    assert new.id != old.id and new.epoch != old.epoch
    assert (new.last_seq, new.log_bytes) == (0, 0)
    assert await storage.read_updates(new.id) == []
    assert await storage.latest_snapshot(new.id) is None
    assert await storage.append_updates(new.id, [upd(b"fresh")]) == 1

    # The old lineage stays readable by its id, untouched.
    assert payloads(await storage.read_updates(old.id)) == [b"a", b"b"]
    assert await storage.latest_snapshot(old.id) == Snapshot(2, b"state-2", T0)
    assert payloads(await storage.read_updates(new.id)) == [b"fresh"]


async def test_delete_unknown_or_twice_raises_not_found(storage: Storage) -> None:
    with pytest.raises(DocumentNotFound):
        await storage.delete_document("ghost", T0)
    await storage.create_document("doc", T0)
    await storage.delete_document("doc", T0 + 1)
    with pytest.raises(DocumentNotFound):
        await storage.delete_document("doc", T0 + 2)


async def test_many_generations_of_one_name(storage: Storage) -> None:
    ids = []
    for generation in range(4):
        record = await storage.create_document("doc", T0 + generation)
        await storage.append_updates(record.id, [upd(f"gen{generation}".encode())])
        ids.append(record.id)
        await storage.delete_document("doc", T0 + generation + 0.5)
    assert len(set(ids)) == 4
    for generation, document_id in enumerate(ids):
        assert payloads(await storage.read_updates(document_id)) == [f"gen{generation}".encode()]


# -- append and read ------------------------------------------------------------------------------


async def test_append_numbers_rows_without_gaps(storage: Storage) -> None:
    doc = await storage.create_document("doc", T0)
    assert await storage.append_updates(doc.id, [upd(b"1")]) == 1
    assert await storage.append_updates(doc.id, [upd(b"2"), upd(b"3"), upd(b"4")]) == 4
    assert await storage.append_updates(doc.id, [upd(b"5")]) == 5
    rows = await storage.read_updates(doc.id)
    assert [r.seq for r in rows] == [1, 2, 3, 4, 5]
    assert payloads(rows) == [b"1", b"2", b"3", b"4", b"5"]


async def test_append_updates_the_record(storage: Storage) -> None:
    doc = await storage.create_document("doc", T0)
    await storage.append_updates(doc.id, [upd(b"abc", "alice", T0 + 1), upd(b"de", "bob", T0 + 2)])
    record = await storage.get_document("doc")
    assert record is not None
    assert (record.last_seq, record.log_bytes, record.last_author) == (2, 5, "bob")
    assert (record.created_at, record.updated_at) == (T0, T0 + 2)
    assert (record.id, record.epoch) == (doc.id, doc.epoch)


async def test_rows_keep_author_time_and_bytes(storage: Storage) -> None:
    doc = await storage.create_document("doc", T0)
    data = bytes(range(256)) + b"\x00\x00"
    await storage.append_updates(doc.id, [NewUpdate(data, "ünïcødé 👩‍💻", 1_700_000_000.123456)])
    [row] = await storage.read_updates(doc.id)
    assert row == StoredUpdate(1, data, "ünïcødé 👩‍💻", 1_700_000_000.123456)
    assert isinstance(row.data, bytes)


async def test_empty_batch_returns_last_seq_and_changes_nothing(storage: Storage) -> None:
    doc = await storage.create_document("doc", T0)
    assert await storage.append_updates(doc.id, []) == 0
    await storage.append_updates(doc.id, [upd(b"x", at=T0 + 1)])
    before = await storage.get_document("doc")
    assert await storage.append_updates(doc.id, []) == 1
    assert await storage.get_document("doc") == before


async def test_read_ranges_and_limits(storage: Storage) -> None:
    doc = await storage.create_document("doc", T0)
    await storage.append_updates(doc.id, [upd(str(i).encode()) for i in range(1, 11)])

    async def seqs(**kwargs: int | None) -> list[int]:
        return [r.seq for r in await storage.read_updates(doc.id, **kwargs)]

    assert await seqs() == list(range(1, 11))
    assert await seqs(after_seq=3) == list(range(4, 11))
    assert await seqs(after_seq=3, until_seq=6) == [4, 5, 6]
    assert await seqs(until_seq=2) == [1, 2]
    assert await seqs(after_seq=3, limit=2) == [4, 5]
    assert await seqs(after_seq=3, until_seq=5, limit=10) == [4, 5]
    assert await seqs(limit=0) == []
    assert await seqs(after_seq=10) == []
    assert await seqs(after_seq=50) == []
    assert await seqs(after_seq=6, until_seq=6) == []
    assert await seqs(after_seq=6, until_seq=3) == []
    assert await seqs(until_seq=0) == []
    assert await seqs(until_seq=99) == list(range(1, 11))
    assert await seqs(after_seq=-5, limit=3) == [1, 2, 3]


async def test_read_pages_through_a_log(storage: Storage) -> None:
    doc = await storage.create_document("doc", T0)
    for start in range(0, 230, 23):
        await storage.append_updates(doc.id, [upd(str(i).encode()) for i in range(start, start + 23)])
    got: list[StoredUpdate] = []
    while page := await storage.read_updates(doc.id, after_seq=got[-1].seq if got else 0, limit=50):
        got.extend(page)
    assert [r.seq for r in got] == list(range(1, 231))
    assert payloads(got) == [str(i).encode() for i in range(230)]


async def test_logs_of_documents_are_separate(storage: Storage) -> None:
    a = await storage.create_document("a", T0)
    b = await storage.create_document("b", T0)
    await storage.append_updates(a.id, [upd(b"a1"), upd(b"a2")])
    assert await storage.append_updates(b.id, [upd(b"b1")]) == 1
    await storage.append_updates(a.id, [upd(b"a3")])
    assert payloads(await storage.read_updates(a.id)) == [b"a1", b"a2", b"a3"]
    assert payloads(await storage.read_updates(b.id)) == [b"b1"]


async def test_unknown_ids_raise_not_found(storage: Storage) -> None:
    ghost = uuid.uuid4().hex
    with pytest.raises(DocumentNotFound):
        await storage.append_updates(ghost, [upd(b"x")])
    with pytest.raises(DocumentNotFound):
        await storage.append_updates(ghost, [])
    with pytest.raises(DocumentNotFound):
        await storage.read_updates(ghost)
    with pytest.raises(DocumentNotFound):
        await storage.save_snapshot(ghost, Snapshot(1, b"s", T0))
    with pytest.raises(DocumentNotFound):
        await storage.latest_snapshot(ghost)


async def test_large_blobs(storage: Storage) -> None:
    doc = await storage.create_document("big", T0)
    blob = bytes(range(256)) * (5 * 1024 * 1024 // 256)  # 5 MiB
    await storage.append_updates(doc.id, [upd(b"small"), upd(blob), upd(b"after")])
    rows = await storage.read_updates(doc.id)
    assert [len(r.data) for r in rows] == [5, len(blob), 5]
    assert rows[1].data == blob
    await storage.save_snapshot(doc.id, Snapshot(3, blob[::-1], T0))
    snapshot = await storage.latest_snapshot(doc.id)
    assert snapshot is not None and snapshot.data == blob[::-1]
    record = await storage.get_document("big")
    assert record is not None and record.log_bytes == len(blob) + 10


async def test_concurrent_appends_stay_gap_free(storage: Storage) -> None:
    doc = await storage.create_document("doc", T0)

    async def writer(w: int) -> list[int]:
        lasts = []
        for i in range(5):
            batch = [upd(f"{w}:{i}:{k}".encode(), f"w{w}") for k in range(1 + (w + i) % 4)]
            lasts.append(await storage.append_updates(doc.id, batch))
        return lasts

    await asyncio.gather(*(writer(w) for w in range(8)))
    rows = await storage.read_updates(doc.id)
    assert [r.seq for r in rows] == list(range(1, len(rows) + 1))
    assert len(rows) == sum(1 + (w + i) % 4 for w in range(8) for i in range(5))
    # Each batch is contiguous and in order.
    by_batch: dict[str, list[int]] = {}
    for row in rows:
        w, i, _k = row.data.decode().split(":")
        by_batch.setdefault(f"{w}:{i}", []).append(row.seq)
    for seqs in by_batch.values():
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    record = await storage.get_document("doc")
    assert record is not None and record.last_seq == len(rows)


async def test_concurrent_creates_of_one_name_admit_one(storage: Storage) -> None:
    attempts = [storage.create_document("race", T0) for _ in range(6)]
    results = await asyncio.gather(*attempts, return_exceptions=True)
    winners = [r for r in results if not isinstance(r, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(r, DocumentExists) for r in results if isinstance(r, BaseException))
    assert await storage.get_document("race") == winners[0]


# -- snapshots ------------------------------------------------------------------------------------


async def test_snapshots_latest_and_at_most(storage: Storage) -> None:
    doc = await storage.create_document("doc", T0)
    assert await storage.latest_snapshot(doc.id) is None
    for seq in (10, 3, 7):  # out of order on purpose
        await storage.save_snapshot(doc.id, Snapshot(seq, f"s{seq}".encode(), T0 + seq))
    assert await storage.latest_snapshot(doc.id) == Snapshot(10, b"s10", T0 + 10)
    assert await storage.latest_snapshot(doc.id, at_most_seq=9) == Snapshot(7, b"s7", T0 + 7)
    assert await storage.latest_snapshot(doc.id, at_most_seq=7) == Snapshot(7, b"s7", T0 + 7)
    assert await storage.latest_snapshot(doc.id, at_most_seq=3) == Snapshot(3, b"s3", T0 + 3)
    assert await storage.latest_snapshot(doc.id, at_most_seq=2) is None
    assert await storage.latest_snapshot(doc.id, at_most_seq=0) is None
    assert await storage.latest_snapshot(doc.id, at_most_seq=1000) == Snapshot(10, b"s10", T0 + 10)


async def test_snapshot_at_the_same_seq_replaces(storage: Storage) -> None:
    doc = await storage.create_document("doc", T0)
    await storage.save_snapshot(doc.id, Snapshot(5, b"first", T0))
    await storage.save_snapshot(doc.id, Snapshot(5, b"second", T0 + 1))
    assert await storage.latest_snapshot(doc.id) == Snapshot(5, b"second", T0 + 1)
    assert await storage.latest_snapshot(doc.id, at_most_seq=5) == Snapshot(5, b"second", T0 + 1)


async def test_snapshot_at_seq_zero_and_empty_data(storage: Storage) -> None:
    doc = await storage.create_document("doc", T0)
    await storage.save_snapshot(doc.id, Snapshot(0, b"", T0))
    assert await storage.latest_snapshot(doc.id) == Snapshot(0, b"", T0)
    assert await storage.latest_snapshot(doc.id, at_most_seq=0) == Snapshot(0, b"", T0)


async def test_snapshots_of_documents_are_separate(storage: Storage) -> None:
    a = await storage.create_document("a", T0)
    b = await storage.create_document("b", T0)
    await storage.save_snapshot(a.id, Snapshot(1, b"a", T0))
    assert await storage.latest_snapshot(b.id) is None
    await storage.save_snapshot(b.id, Snapshot(1, b"b", T0))
    assert await storage.latest_snapshot(a.id) == Snapshot(1, b"a", T0)


async def test_snapshots_do_not_touch_the_log(storage: Storage) -> None:
    doc = await storage.create_document("doc", T0)
    await storage.append_updates(doc.id, [upd(b"1"), upd(b"2")])
    before = await storage.get_document("doc")
    await storage.save_snapshot(doc.id, Snapshot(2, b"state", T0 + 9))
    assert await storage.get_document("doc") == before
    assert payloads(await storage.read_updates(doc.id)) == [b"1", b"2"]


# -- property: the log behaves like a Python list -------------------------------------------------

_ops = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.lists(st.binary(max_size=12), max_size=6)),
        st.tuples(st.just("snapshot"), st.integers(min_value=0, max_value=40)),
    ),
    max_size=20,
)
_queries = st.lists(
    st.tuples(
        st.integers(min_value=-2, max_value=45),
        st.none() | st.integers(min_value=-2, max_value=45),
        st.none() | st.integers(min_value=0, max_value=45),
    ),
    max_size=6,
)


@pytest.mark.parametrize("storage_url", ["memory", "sqlite"], indirect=True)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=_ops, queries=_queries, at_most=st.lists(st.none() | st.integers(-1, 45), max_size=4))
async def test_log_matches_a_python_model(
    storage: Storage,
    ops: list[tuple[str, object]],
    queries: list[tuple[int, int | None, int | None]],
    at_most: list[int | None],
) -> None:
    doc = await storage.create_document(uuid.uuid4().hex, T0)
    log: list[StoredUpdate] = []
    snaps: dict[int, Snapshot] = {}
    for step, (kind, arg) in enumerate(ops):
        if kind == "append":
            assert isinstance(arg, list)
            batch = [upd(data, f"a{step}", T0 + step) for data in arg]
            last = await storage.append_updates(doc.id, batch)
            for update in batch:
                log.append(StoredUpdate(len(log) + 1, update.data, update.author, update.created_at))
            assert last == len(log)
        else:
            assert isinstance(arg, int)
            snaps[arg] = Snapshot(arg, f"{arg}@{step}".encode(), T0 + step)
            await storage.save_snapshot(doc.id, snaps[arg])

    assert await storage.read_updates(doc.id) == log
    for after, until, limit in queries:
        expected = [u for u in log if u.seq > after and (until is None or u.seq <= until)]
        if limit is not None:
            expected = expected[:limit]
        assert await storage.read_updates(doc.id, after, until, limit) == expected
    for bound in at_most:
        eligible = [s for s in snaps if bound is None or s <= bound]
        expected_snapshot = snaps[max(eligible)] if eligible else None
        assert await storage.latest_snapshot(doc.id, bound) == expected_snapshot
    record = await storage.get_document(doc.name)
    assert record is not None
    assert (record.last_seq, record.log_bytes) == (len(log), sum(len(u.data) for u in log))
