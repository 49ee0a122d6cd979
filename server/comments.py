"""Comment use cases: anchored threads, comments, reactions, mentions; each change logged and published."""

from __future__ import annotations

import logging
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import orjson
from pycrdt import Doc

from crdt.anchors import Anchor, Placement, Resolution, anchor_positions, anchor_range, reattach, resolve
from crdt.positions import AnchorError, Unit
from crdt.shadow import Shadow, ShadowError
from persistence.base import DocumentRecord
from persistence.comments import (
    OPEN,
    RESOLVED,
    CommentNotFound,
    CommentRecord,
    CommentStore,
    Mention,
    NewEvent,
    Reaction,
    ThreadRecord,
)
from server.auth import Identity, Role
from server.comment_shapes import (
    CommentError,
    PositionsInput,
    RangeInput,
    b64,
    comment_view,
    iso,
    parse_mentions,
    thread_view,
)
from server.hub import Hub
from server.loading import load_state

log = logging.getLogger("cocreate.comments")
T = TypeVar("T")

STATES = ("open", "resolved", "orphaned", "all")
_TWINS = 32  # documents whose ASCII twin is kept (each is about as large as its document)
_STATES = 4  # documents not loaded in a room whose stored state is kept (per log position)


class Comments:
    """The comment use cases over a `CommentStore`, the hub's rooms, storage and event bus."""

    def __init__(self, hub: Hub, store: CommentStore) -> None:
        self.hub = hub
        self.store = store
        self._twins: OrderedDict[str, Shadow] = OrderedDict()
        self._states: OrderedDict[str, tuple[int, Doc[Any]]] = OrderedDict()

    # -- documents ------------------------------------------------------------------------------
    async def record(self, name: str) -> DocumentRecord:
        record = await self.hub.storage.get_document(name)
        if record is None:
            raise CommentError(404, "document_not_found", f"no document named {name!r}")
        return record

    async def _doc(self, record: DocumentRecord) -> Doc[Any]:
        """The live replica when the document is loaded, else its stored state (cached per seq)."""
        room = self.hub.registry.get(record.name)
        if room is not None and room.peers and room.record is not None and room.record.id == record.id:
            return room.document.doc
        cached = self._states.get(record.id)
        if cached is not None and cached[0] == record.last_seq:
            self._states.move_to_end(record.id)
            return cached[1]
        state = await load_state(self.hub.storage, record.id, page_size=self.hub.settings.load_page_size)
        _remember(self._states, record.id, (state.last_seq, state.document.doc), _STATES)
        return state.document.doc

    def _twin(self, record: DocumentRecord) -> Shadow:
        twin = self._twins.get(record.id)
        if twin is None:
            twin = _remember(self._twins, record.id, Shadow(), _TWINS)
        self._twins.move_to_end(record.id)
        return twin

    # -- threads ------------------------------------------------------------------------------
    async def create_thread(
        self,
        record: DocumentRecord,
        who: Identity,
        root: object,
        where: RangeInput | PositionsInput,
        body: str,
    ) -> dict[str, Any]:
        if not isinstance(root, str) or not root:
            raise CommentError(422, "invalid_root", "must name a root Y.Text of the document", "root")
        doc = await self._doc(record)
        placement = _anchored(
            lambda: (
                anchor_range(doc, root, where.start, where.end, where.unit, self._twin(record))
                if isinstance(where, RangeInput)
                else anchor_positions(doc, root, where.start, where.end, self._twin(record))
            )
        )
        now = self.hub.clock()
        thread = ThreadRecord(
            id=uuid.uuid4().hex,
            document_id=record.id,
            root=root,
            anchor_start=placement.anchor.start,
            anchor_end=placement.anchor.end,
            quote=placement.quote,
            status=OPEN,
            created_by=who.user_id,
            created_at=now,
            updated_at=now,
        )
        first = CommentRecord(
            uuid.uuid4().hex, thread.id, who.user_id, body, now, mentions=tuple(parse_mentions(body))
        )
        unit = where.unit if isinstance(where, RangeInput) else "utf16"
        view = thread_view(record, thread, _placed(placement, unit), unit, [comment_view(first, [])])
        summary = {
            k: view[k] for k in ("id", "root", "quote", "status", "anchor", "created_by", "created_at")
        }
        data = {"thread": summary, "comment": view["comments"][0]}
        seq = await self.store.create_thread(thread, first, self._event("comment.thread_created", who, data))
        self._publish(record, "comment.thread_created", data, seq)
        return view

    async def list_threads(self, record: DocumentRecord, state: str, unit: Unit) -> list[dict[str, Any]]:
        if state not in STATES:
            raise CommentError(422, "invalid_status", f"use one of {', '.join(STATES)}", "status")
        status = {"all": None, "resolved": RESOLVED}.get(state, OPEN)
        stored = await self.store.list_threads(record.id, status)
        views = await self._views(record, stored, unit)
        return [v for v in views if state in ("all", "resolved") or v["state"] == state]

    async def get_thread(self, record: DocumentRecord, thread_id: str, unit: Unit) -> dict[str, Any]:
        return (await self._views(record, [await self._thread(record, thread_id)], unit))[0]

    async def set_status(
        self, record: DocumentRecord, who: Identity, thread_id: str, status: str
    ) -> dict[str, Any]:
        await self._thread(record, thread_id)
        kind = "comment.thread_resolved" if status == RESOLVED else "comment.thread_reopened"
        data = {"thread": thread_id, "by": who.user_id}
        thread, seq = await self.store.set_status(
            thread_id, status, who.user_id, self.hub.clock(), self._event(kind, who, data)
        )
        if seq is not None:
            self._publish(record, kind, data, seq)
        return (await self._views(record, [thread], "utf16"))[0]

    # -- comments -----------------------------------------------------------------------------
    async def add_comment(
        self, record: DocumentRecord, who: Identity, thread_id: str, body: str, reply_to: object
    ) -> dict[str, Any]:
        await self._thread(record, thread_id)
        if reply_to is not None and not isinstance(reply_to, str):
            raise CommentError(422, "invalid_reply_to", "must be a comment id", "reply_to")
        comment = CommentRecord(
            uuid.uuid4().hex,
            thread_id,
            who.user_id,
            body,
            self.hub.clock(),
            reply_to,
            mentions=tuple(parse_mentions(body)),
        )
        view = comment_view(comment, [])
        data = {"thread": thread_id, "comment": view}
        try:
            seq = await self.store.add_comment(comment, self._event("comment.added", who, data))
        except CommentNotFound:
            raise CommentError(
                422, "invalid_reply_to", "no such comment in this thread", "reply_to"
            ) from None
        self._publish(record, "comment.added", data, seq)
        return view

    async def edit_comment(
        self, record: DocumentRecord, who: Identity, thread_id: str, comment_id: str, body: str
    ) -> dict[str, Any]:
        comment = await self._comment(record, thread_id, comment_id)
        if comment.author != who.user_id:
            raise CommentError(403, "not_author", "only its author may edit a comment")
        mentioned = parse_mentions(body)
        now = self.hub.clock()
        preview = comment_view(
            CommentRecord(
                comment.id,
                thread_id,
                comment.author,
                body,
                comment.created_at,
                comment.reply_to,
                now,
                None,
                tuple(sorted(mentioned)),
            ),
            [],
        )
        data = {"thread": thread_id, "comment": preview}
        try:
            edited, seq = await self.store.edit_comment(
                comment_id, body, mentioned, now, self._event("comment.edited", who, data)
            )
        except CommentNotFound:
            raise CommentError(404, "comment_not_found", "the comment was deleted") from None
        self._publish(record, "comment.edited", data, seq)
        return comment_view(edited, await self.store.list_reactions([comment_id]))

    async def delete_comment(
        self, record: DocumentRecord, who: Identity, role: Role, thread_id: str, comment_id: str
    ) -> dict[str, Any]:
        comment = await self._comment(record, thread_id, comment_id)
        if comment.author != who.user_id and role < Role.OWNER:
            raise CommentError(403, "not_author", "only its author or a document owner may delete a comment")
        data = {"thread": thread_id, "comment": comment_id, "by": who.user_id}
        deleted, seq = await self.store.delete_comment(
            comment_id, self.hub.clock(), self._event("comment.deleted", who, data)
        )
        if seq is not None:
            self._publish(record, "comment.deleted", data, seq)
        return comment_view(deleted, [])

    async def react(
        self, record: DocumentRecord, who: Identity, thread_id: str, comment_id: str, emoji: str, add: bool
    ) -> dict[str, Any]:
        await self._comment(record, thread_id, comment_id)
        kind = "comment.reaction_added" if add else "comment.reaction_removed"
        data = {"thread": thread_id, "comment": comment_id, "emoji": emoji, "user": who.user_id}
        event = self._event(kind, who, data)
        try:
            if add:
                seq = await self.store.add_reaction(
                    Reaction(comment_id, who.user_id, emoji, self.hub.clock()), event
                )
            else:
                seq = await self.store.remove_reaction(comment_id, who.user_id, emoji, event)
        except CommentNotFound:
            raise CommentError(404, "comment_not_found", "the comment was deleted") from None
        if seq is not None:
            self._publish(record, kind, data, seq)
        comment = await self.store.get_comment(comment_id)
        assert comment is not None
        return comment_view(comment, await self.store.list_reactions([comment_id]))

    async def mentions(
        self, record: DocumentRecord, user: str, limit: int, before: float | None
    ) -> list[dict[str, Any]]:
        found = await self.store.mentions_of(user, record.id, limit, before)
        return [_mention_view(m) for m in found]

    async def mentions_everywhere(
        self, who: Identity, limit: int, before: float | None
    ) -> tuple[list[dict[str, Any]], float | None]:
        """`who`'s own mentions in every live document they may still read, newest first; and the
        `before` of the next page (None: no more). A page may hold fewer than `limit` (mentions in
        documents they lost access to are left out) and still have a next one."""
        found = await self.store.mentions_of(who.user_id, None, limit, before)
        records = await self.hub.storage.live_documents_by_id([m.document_id for m in found])
        roles: dict[str, Role] = {}
        views = []
        for mention in found:
            record = records.get(mention.document_id)
            if record is None:
                continue
            if record.name not in roles:
                roles[record.name] = await self.hub.authenticator.role(who, record.name)
            if roles[record.name] >= Role.VIEWER:
                views.append({"document": record.name, **_mention_view(mention)})
        return views, (found[-1].created_at if len(found) == limit else None)

    # -- helpers ------------------------------------------------------------------------------
    async def _thread(self, record: DocumentRecord, thread_id: str) -> ThreadRecord:
        thread = await self.store.get_thread(thread_id)
        if thread is None or thread.document_id != record.id:
            raise CommentError(404, "thread_not_found", f"no thread {thread_id!r} on {record.name!r}")
        return thread

    async def _comment(self, record: DocumentRecord, thread_id: str, comment_id: str) -> CommentRecord:
        await self._thread(record, thread_id)
        comment = await self.store.get_comment(comment_id)
        if comment is None or comment.thread_id != thread_id:
            raise CommentError(404, "comment_not_found", f"no comment {comment_id!r} in thread {thread_id!r}")
        return comment

    async def _views(
        self, record: DocumentRecord, stored: Sequence[ThreadRecord], unit: Unit
    ) -> list[dict[str, Any]]:
        if not stored:
            return []
        doc = await self._doc(record)
        twin = self._twin(record)
        anchors = [Anchor(t.root, t.anchor_start, t.anchor_end) for t in stored]
        resolutions = _anchored(lambda: resolve(doc, anchors, unit, twin))
        threads = list(stored)
        for i, (thread, found) in enumerate(zip(stored, resolutions, strict=True)):
            if found.orphaned and thread.status == OPEN:
                moved = await self._reattach(record, doc, twin, thread)
                if moved is not None:
                    threads[i] = moved
                    resolutions[i] = resolve(
                        doc, [Anchor(moved.root, moved.anchor_start, moved.anchor_end)], unit, twin
                    )[0]
        ids = [t.id for t in threads]
        comments = await self.store.list_comments(ids)
        reactions = await self.store.list_reactions([c.id for c in comments])
        by_thread: dict[str, list[dict[str, Any]]] = {t: [] for t in ids}
        for comment in comments:
            by_thread[comment.thread_id].append(
                comment_view(comment, [r for r in reactions if r.comment_id == comment.id])
            )
        return [
            thread_view(record, t, r, unit, by_thread[t.id])
            for t, r in zip(threads, resolutions, strict=True)
        ]

    async def _reattach(
        self, record: DocumentRecord, doc: Doc[Any], twin: Shadow, thread: ThreadRecord
    ) -> ThreadRecord | None:
        """An orphaned range whose text came back (an undo elsewhere): anchor it to that text."""
        placement = reattach(
            doc, Anchor(thread.root, thread.anchor_start, thread.anchor_end), thread.quote, twin
        )
        if placement is None:
            return None
        anchor = placement.anchor
        data = {"thread": thread.id, "anchor": {"start": b64(anchor.start), "end": b64(anchor.end)}}
        system = Identity("cocreate", "cocreate")
        moved, seq = await self.store.move_thread(
            thread.id,
            anchor.start,
            anchor.end,
            self.hub.clock(),
            self._event("comment.thread_reattached", system, data),
        )
        self._publish(record, "comment.thread_reattached", data, seq)
        return moved

    def _event(self, kind: str, who: Identity, data: dict[str, Any]) -> NewEvent:
        return NewEvent(kind, who.user_id, self.hub.clock(), orjson.dumps(data).decode())

    def _publish(self, record: DocumentRecord, kind: str, data: dict[str, Any], seq: int) -> None:
        self.hub.events.publish(record.name, kind, {"seq": seq, **data})


def _remember(cache: OrderedDict[str, Any], key: str, value: Any, size: int) -> Any:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > size:
        cache.popitem(last=False)
    return value


def _anchored(make: Callable[[], T]) -> T:
    try:
        return make()
    except AnchorError as exc:
        raise CommentError(422, "invalid_anchor", exc.detail, exc.field) from None
    except ShadowError as exc:  # our anchor index failed on this document's state: a bug, loudly
        log.error("anchoring failed: %s", exc.detail)
        raise CommentError(
            500, "anchor_index_failed", "comment anchors are unavailable for this document"
        ) from None


def _placed(placement: Placement, unit: Unit) -> Resolution:
    start, end = placement.offsets(unit)
    return Resolution(start, end, placement.quote, orphaned=False)


def _mention_view(mention: Mention) -> dict[str, Any]:
    return {
        "user": mention.user_id,
        "thread": mention.thread_id,
        "comment": mention.comment_id,
        "author": mention.author,
        "created_at": iso(mention.created_at),
    }
