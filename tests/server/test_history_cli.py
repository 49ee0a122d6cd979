"""The history commands on a seeded SQLite file, and `cocreate restore` through a running server."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Doc

from persistence.base import NewUpdate
from persistence.sql import SqlStorage
from server.app import build
from server.auth import Identity, Role
from server.cli import main
from server.history import history_for
from server.sessions import Sessions
from server.settings import Settings
from server.tokens import issue
from tests.crdt.history_logs import Row, make_log, text_of, texts_after_each
from tests.support.server_process import running_server

DOC = "team/essay"
SECRET = "history-cli-secret-0123456789abcdef"
Capture = pytest.CaptureFixture[bytes]


@dataclass
class Seeded:
    url: str
    rows: list[Row]
    session: str  # a session over rows (half, three quarters]
    half: int
    three_quarters: int

    def args(self, command: str, *extra: str) -> list[str]:
        return [command, DOC, "--db", self.url, *extra]


async def seed(path: Path, rows: list[Row]) -> Seeded:
    url = f"sqlite+aiosqlite:///{path}"
    storage = SqlStorage(url)
    _, hub = build(Settings(secret=SECRET), storage)
    await storage.open()
    try:
        record = await storage.create_document(DOC, rows[0].created_at - 1)
        half, three_quarters = len(rows) // 2, len(rows) * 3 // 4
        sessions = Sessions(history_for(hub))
        facilitator = Identity("olga", "Olga")

        async def append(part: list[Row]) -> None:
            for row in part:
                await storage.append_updates(record.id, [NewUpdate(row.data, row.author, row.created_at)])

        await append(rows[:half])
        session = await sessions.start(record, facilitator, "warm-up")
        await append(rows[half:three_quarters])
        await sessions.bookmark(record, facilitator, "goal 2 agreed", None)
        await sessions.end(record, facilitator, session.id)
        await append(rows[three_quarters:])
    finally:
        await storage.close()
    return Seeded(url, rows, session.id, half, three_quarters)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    rows, _ = make_log(11, 3, 400)
    return asyncio.run(seed(tmp_path_factory.mktemp("cli") / "history.db", rows))


def run(argv: list[str], capsysbinary: Capture) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsysbinary.readouterr()
    return code, out.decode(), err.decode()


def refused(argv: list[str], capsysbinary: Capture) -> str:
    """The command stops with a usage error (exit 2, no traceback); its message."""
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    _, err = capsysbinary.readouterr()
    assert stopped.value.code == 2
    assert "Traceback" not in err.decode()
    return err.decode()


def test_history_prints_the_timeline_as_text_and_json(seeded: Seeded, capsysbinary: Capture) -> None:
    code, out, _ = run(seeded.args("history", "--gap", "10", "--json"), capsysbinary)
    assert code == 0
    view = json.loads(out)
    assert view["seq"] == len(seeded.rows)
    for author, totals in view["authors"].items():
        assert totals["updates"] == sum(1 for r in seeded.rows if r.author == author)
    kinds = {e["kind"] for e in view["entries"]}
    assert {"edit", "session.started", "session.ended", "bookmark.added"} <= kinds
    code, out, _ = run(seeded.args("history", "--gap", "10"), capsysbinary)
    assert code == 0 and out.startswith(f"{DOC}: {len(seeded.rows)} updates")
    assert all(f"  {a}: " in out for a in view["authors"])


def test_export_at_a_moment_in_three_formats(seeded: Seeded, capsysbinary: Capture) -> None:
    texts = texts_after_each(seeded.rows)
    seq = len(seeded.rows) // 3
    code, out, _ = run(seeded.args("export", "--at", str(seq)), capsysbinary)
    assert code == 0 and out == texts[seq]
    moment = seeded.rows[seq - 1].created_at
    code, out, _ = run(seeded.args("export", "--at", f"@{moment}", "--format", "json"), capsysbinary)
    assert code == 0 and json.loads(out) == {
        "seq": seq,
        "roots": {"t": {"type": "text", "value": texts[seq]}},
    }
    assert main(seeded.args("export", "--at", str(seq), "--format", "update")) == 0
    doc: Doc[Any] = Doc()
    doc.apply_update(capsysbinary.readouterr().out)
    assert text_of(doc) == texts[seq]


def test_export_draws_a_progress_bar_per_page_on_stderr(
    seeded: Seeded, capsysbinary: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COCREATE_LOAD_PAGE_SIZE", "50")
    last = len(seeded.rows)
    code, out, err = run(seeded.args("export", "--at", str(last), "--progress", "always"), capsysbinary)
    assert code == 0 and out == texts_after_each(seeded.rows)[-1]
    assert err.startswith("\r[") and err.endswith("\n")
    assert f"100.0% {last}/{last}" in err
    code, _, err = run(seeded.args("export", "--at", str(last), "--progress", "never"), capsysbinary)
    assert code == 0 and err == ""


def test_replay_prints_paced_frames(seeded: Seeded, capsysbinary: Capture) -> None:
    end = seeded.three_quarters
    code, out, _ = run(
        seeded.args("replay", "--to", str(end), "--speed", "10", "--max-gap", "2"), capsysbinary
    )
    assert code == 0
    frames = [json.loads(line) for line in out.splitlines()]
    updates = [f for f in frames if f["kind"] == "update"]
    assert [f["seq"] for f in updates] == list(range(1, end + 1))
    assert [f["author"] for f in updates] == [r.author for r in seeded.rows[:end]]
    assert [base64.b64decode(f["update"]) for f in updates] == [r.data for r in seeded.rows[:end]]
    offsets = [f["offset"] for f in frames]
    assert offsets == sorted(offsets) and offsets[0] == 0.0
    gaps = [b - a for a, b in itertools.pairwise(offsets)]
    assert max(gaps) <= 2 / 10 + 1e-6  # idle gaps cut to 2 s, then played 10x faster


def test_diff_between_two_moments(seeded: Seeded, capsysbinary: Capture) -> None:
    texts = texts_after_each(seeded.rows)
    low, high = seeded.half, seeded.three_quarters
    code, out, _ = run(seeded.args("diff", "--from", str(low), "--to", str(high), "--json"), capsysbinary)
    assert code == 0
    view = json.loads(out)
    added = sum(len(h["text"]) for h in view["hunks"] if h["kind"] == "added")
    removed = sum(len(h["text"]) for h in view["hunks"] if h["kind"] == "removed")
    assert (view["from_seq"], view["to_seq"]) == (low, high)
    assert added - removed == len(texts[high]) - len(texts[low])
    window_authors = {r.author for r in seeded.rows[low:high]}
    assert {h["author"] for h in view["hunks"] if h["kind"] == "added"} <= window_authors
    code, out, _ = run(seeded.args("diff", "--from", str(low), "--to", str(high)), capsysbinary)
    assert code == 0 and out.startswith(f"{DOC}: seq {low} -> {high}")
    assert out.count("\n+ ") + out.count("\n- ") == len(view["hunks"])


def test_sessions_and_session_summary(seeded: Seeded, capsysbinary: Capture) -> None:
    code, out, _ = run(seeded.args("sessions", "--json"), capsysbinary)
    assert code == 0
    (session,) = json.loads(out)["sessions"]
    assert session["id"] == seeded.session and session["name"] == "warm-up"
    assert (session["start_seq"], session["end_seq"]) == (seeded.half, seeded.three_quarters)
    assert session["bookmarks"][0]["label"] == "goal 2 agreed"
    code, out, _ = run(seeded.args("sessions"), capsysbinary)
    assert code == 0 and seeded.session in out and "goal 2 agreed" in out
    code, out, _ = run(seeded.args("summary", "--session", seeded.session, "--json"), capsysbinary)
    assert code == 0
    view = json.loads(out)
    assert view["session"]["id"] == seeded.session
    window = seeded.rows[seeded.half : seeded.three_quarters]
    updates = {p["author"]: p["updates"] for p in view["participants"]}
    assert updates == {a: sum(1 for r in window if r.author == a) for a in {r.author for r in window}}
    code, out, _ = run(seeded.args("summary", "--to", str(len(seeded.rows))), capsysbinary)
    assert code == 0 and all(f"  {r.author}: " in out for r in seeded.rows)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["replay", "--speed", "0"], "--speed must be in (0, 10000]"),
        (["replay", "--speed", "-2"], "--speed must be in (0, 10000]"),
        (["replay", "--speed", "1e9"], "--speed must be in (0, 10000]"),
        (["replay", "--max-gap", "-1"], "--max-gap must be in [0, 86400]"),
        (["history", "--gap", "-5"], "--gap must be in [0, 86400]"),
        (["replay", "--speed", "fast"], "invalid float value"),
    ],
)
def test_bad_numbers_are_usage_errors(
    seeded: Seeded, capsysbinary: Capture, argv: list[str], message: str
) -> None:
    command, *extra = argv
    assert message in refused(seeded.args(command, *extra), capsysbinary)


def test_a_missing_sqlite_file_is_refused_not_created(tmp_path: Path, capsysbinary: Capture) -> None:
    missing = tmp_path / "typo" / "histroy.db"
    err = refused(["history", DOC, "--db", f"sqlite+aiosqlite:///{missing}"], capsysbinary)
    assert "no SQLite database at" in err and str(missing) in err
    err = refused(["export", DOC, "--at", "3", "--data-dir", str(tmp_path / "nowhere")], capsysbinary)
    assert "no SQLite database at" in err
    assert not missing.parent.exists() and not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["export", "--at", "yesterday-ish"], "give a seq, @unix-seconds or an ISO 8601 time"),
        (["export", "--at", "3", "--root", "nope"], "no text root 'nope'"),
        (["diff", "--from", "30", "--to", "10"], "is before --from"),
        (["summary", "--session", "nope"], "no session 'nope'"),
        (["summary", "--session", "x", "--to", "3"], "give --session or --from/--to, not both"),
    ],
)
def test_bad_requests_exit_1_with_a_message(
    seeded: Seeded, capsysbinary: Capture, argv: list[str], message: str
) -> None:
    command, *extra = argv
    code, _, err = run(seeded.args(command, *extra), capsysbinary)
    assert code == 1 and message in err and "Traceback" not in err


def test_an_unknown_document_exits_1(seeded: Seeded, capsysbinary: Capture) -> None:
    code, _, err = run(["history", "team/none", "--db", seeded.url], capsysbinary)
    assert code == 1 and "no document named 'team/none'" in err


def test_the_commands_leave_the_database_file_unchanged(seeded: Seeded, capsysbinary: Capture) -> None:
    path = Path(seeded.url.split("///", 1)[1])
    before = (path.stat().st_size, path.read_bytes())
    started = time.time()
    for argv in (seeded.args("export", "--at", "100"), seeded.args("summary"), seeded.args("diff")):
        assert main(argv) == 0
    capsysbinary.readouterr()
    assert (path.stat().st_size, path.read_bytes()) == before and time.time() - started < 60


def test_restore_goes_through_a_running_server(tmp_path: Path, capsysbinary: Capture) -> None:
    rows, _ = make_log(5, 3, 200)
    db = tmp_path / "cocreate.db"
    seeded = asyncio.run(seed(db, rows))
    texts = texts_after_each(rows)
    target = len(rows) // 3
    editor = issue("ed", "Ed", {"team/*": Role.EDITOR}, now=time.time(), ttl=600, secret=SECRET)
    viewer = issue("vic", "Vic", {"team/*": Role.VIEWER}, now=time.time(), ttl=600, secret=SECRET)
    with running_server(tmp_path, seeded.url, "--secret", SECRET) as server:
        restore = ["restore", DOC, "--at", str(target), "--server", server.url]
        code, _, err = run([*restore, "--token", viewer], capsysbinary)
        assert code == 1 and err.startswith("cocreate restore: 403 ")
        code, out, _ = run([*restore, "--token", editor], capsysbinary)
        assert code == 0 and out == f"{DOC}: restored to seq {target} as seq {len(rows) + 1}\n"
        code, out, _ = run([*restore, "--token", editor, "--json"], capsysbinary)
        assert code == 0 and json.loads(out)["changed"] is False  # it already reads like that
        code, out, _ = run(seeded.args("export", "--at", str(len(rows) + 1)), capsysbinary)
        assert code == 0 and out == texts[target]
        code, out, _ = run(seeded.args("history", "--json", "--from", str(len(rows))), capsysbinary)
        assert json.loads(out)["authors"]["ed"]["updates"] == 1  # attributed to the restorer
    code, _, err = run([*restore, "--token", editor], capsysbinary)  # the server is gone
    assert code == 1 and f"cannot reach {server.url}" in err


def test_restore_refuses_a_missing_token_or_a_bad_url(
    capsysbinary: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COCREATE_TOKEN", raising=False)
    assert "no token" in refused(
        ["restore", DOC, "--at", "3", "--server", "http://127.0.0.1:9"], capsysbinary
    )
    err = refused(["restore", DOC, "--at", "3", "--server", "file:///etc", "--token", "t"], capsysbinary)
    assert "--server must be an http(s) URL" in err
