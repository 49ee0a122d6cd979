"""The browser app's pure logic, run in node against the server's own rules: the role the page
computes from /api/me equals the server's effective role; frames counted for acks are exactly the
ones the server numbers."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from crdt.messages import SyncStep1, SyncStep2, SyncUpdate, encode_message
from server.auth import Role
from server.tokens import grant_role
from tests.support.node import unavailable
from tests.support.server_process import ROOT

WEB = ROOT / "client" / "web"
ROLES = ["none", "viewer", "commenter", "editor", "owner"]
SEGMENTS = st.sampled_from(["team", "team/hr", "team/plan", "t", "x/y", "team/h"])


def run_node(script: str, payload: Any) -> Any:
    node = shutil.which("node")
    if node is None:
        unavailable("the browser app's logic tests", "`node` is not on PATH")
    assert node is not None
    done = subprocess.run(
        [node, "--input-type=module", "-e", script],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        cwd=WEB,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


ROLE_ON = """
import { roleOn } from './src/api.js'
let input = ''
for await (const chunk of process.stdin) input += chunk
const cases = JSON.parse(input)
console.log(JSON.stringify(cases.map(([me, doc]) => roleOn(me, doc))))
"""

patterns = st.one_of(
    SEGMENTS, SEGMENTS.map(lambda s: s + "*"), SEGMENTS.map(lambda s: s + "/*"), st.just("*")
)
grants = st.dictionaries(patterns, st.sampled_from(ROLES), max_size=5)
entries = st.lists(st.tuples(SEGMENTS, st.sampled_from(ROLES[1:])), max_size=3)
cases = st.lists(st.tuples(grants, entries, SEGMENTS), min_size=1, max_size=40)


@settings(max_examples=8, deadline=None)
@given(cases)
def test_role_on_matches_the_server(batch: list[tuple[dict[str, str], list[tuple[str, str]], str]]) -> None:
    payload = []
    expected = []
    for granted, access, document in batch:
        me = {"local": False, "grants": granted, "access": [{"document": d, "role": r} for d, r in access]}
        payload.append([me, document])
        server_grants = tuple((pattern, Role[role.upper()]) for pattern, role in granted.items())
        role = grant_role(server_grants, document)  # effective role = max(grant, access-list entry)
        for entry_document, entry_role in access:
            if entry_document == document:
                role = max(role, Role[entry_role.upper()])
        expected.append(role.name.lower())
    assert run_node(ROLE_ON, payload) == expected


def test_local_mode_is_owner_everywhere() -> None:
    assert run_node(ROLE_ON, [[{"local": True, "grants": {}}, "any/doc"]]) == ["owner"]


COUNTED = """
import { carriesUpdate } from './src/sync.js'
let input = ''
for await (const chunk of process.stdin) input += chunk
console.log(JSON.stringify(JSON.parse(input).map((hex) => carriesUpdate(Buffer.from(hex, 'hex')))))
"""


def test_frames_counted_for_acks_are_the_ones_the_server_numbers() -> None:
    frames = {
        encode_message(SyncStep1(b"\x00")).hex(): False,
        encode_message(SyncStep2(b"\x00\x00")).hex(): True,
        encode_message(SyncUpdate(b"\x00\x00")).hex(): True,
        "0100": False,  # awareness
        "03": False,  # query awareness
        "": False,
    }
    assert run_node(COUNTED, list(frames)) == list(frames.values())
