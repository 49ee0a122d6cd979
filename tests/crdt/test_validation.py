"""Tests of the bounded Yjs update validator: legit pycrdt traffic passes, hostile bytes are refused."""

from __future__ import annotations

import ast
import json
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycrdt import Array, Doc, Map, Text, XmlElement, XmlFragment, XmlText

import crdt.validation
from crdt.errors import InvalidUpdate
from crdt.lib0 import encode_var_int, encode_var_string, encode_var_uint
from crdt.validation import UpdateLimits, UpdateSummary, validate_state_vector, validate_update

u = encode_var_uint
s = encode_var_string
CLIENT = 1234567
REPROS = {  # from the hardening issue
    "sigsegv": bytes.fromhex("010101000801016101" + "7501" * 30000 + "7e00"),
    "amplification": bytes.fromhex("80808040"),
    "poisoning": bytes.fromhex("0101d2090000808080808080801000"),
    "clock wrap": bytes.fromhex("01014d0500ffffffffffffffffff0100"),
}
NON_ATOMIC = bytes.fromhex("010207002801016d016b017d0108000700017d0200")


# -- helpers ---------------------------------------------------------------------------------
def root(name: str) -> bytes:
    return u(1) + s(name)


def string_item(text: str, parent: bytes = root("t")) -> bytes:
    return b"\x04" + parent + s(text)


def update(
    runs: list[tuple[int, int, list[bytes]]], deletes: dict[int, list[tuple[int, int]]] | None = None
) -> bytes:
    out = u(len(runs))
    for client, clock, structs in runs:
        out += u(len(structs)) + u(client) + u(clock) + b"".join(structs)
    deletes = deletes or {}
    out += u(len(deletes))
    for client, ranges in deletes.items():
        out += u(client) + u(len(ranges)) + b"".join(u(k) + u(n) for k, n in ranges)
    return out


def make_doc(client_id: int | None = None) -> Doc[Any]:
    return Doc(client_id=client_id)


def clocks(deleted: dict[int, list[tuple[int, int]]]) -> set[tuple[int, int]]:
    return {(c, k) for c, ranges in deleted.items() for start, n in ranges for k in range(start, start + n)}


def build_corpus() -> tuple[Doc[Any], list[bytes]]:
    """A document touching every content kind pycrdt can produce, and its incremental updates."""
    doc = make_doc(CLIENT)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    text = doc.get("t", type=Text)
    map_ = doc.get("m", type=Map)
    array = doc.get("a", type=Array)
    xml = doc.get("x", type=XmlFragment)
    text += "hello 😀 é"
    text.format(0, 3, {"bold": True})
    text.insert_embed(2, {"image": "x.png"})
    text.insert(1, "zz", {"italic": {"deep": [1, 2]}})
    del text[0:2]
    map_.update({"i": 1, "f": 1.5, "big": 2**60, "neg": -(2**40), "s": "str", "b": b"\x00\x01"})
    map_.update({"n": None, "yes": True, "no": False, "inf": float("inf"), "nan": float("nan")})
    map_["arr"] = [1, [2, [3, {"k": None}]], "x"]
    map_["nested"] = Map({"inner": Array([1, 2, Text("t")])})
    array.extend([Map({"z": 1}), Array([Array([1])])])
    del array[0]
    xml.children.append(XmlElement("p", {"class": "c"}, [XmlText("hi"), XmlElement("b")]))
    map_["sub"] = make_doc(42)
    del map_["i"]
    return doc, updates


def run_child(code: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {"RUST_BACKTRACE": "0", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return subprocess.run(
        [sys.executable, "-c", code], input=stdin, capture_output=True, text=True, timeout=120, env=env
    )


# -- legitimate traffic ----------------------------------------------------------------------
def test_every_content_kind_from_pycrdt_validates_and_the_summary_matches() -> None:
    doc, updates = build_corpus()
    state: dict[int, int] = {}
    deleted: set[tuple[int, int]] = set()
    for data in updates:
        summary = validate_update(data, known_state=state)
        for client, (first, end) in summary.clients.items():
            assert first == state.get(client, 0)
            state[client] = end
        deleted |= clocks(summary.deleted)
    assert state == validate_state_vector(doc.get_state())
    full = validate_update(doc.get_update(), known_state={})
    assert {c: end for c, (_first, end) in full.clients.items()} == state
    assert clocks(full.deleted) == deleted
    assert full.subdoc_count == 1
    assert full.type_count == 8  # 9 types were made; the deleted Map({"z": 1}) travels as Deleted
    assert not full.is_empty


def test_text_clock_lengths_count_utf16_units_like_yjs() -> None:
    doc = make_doc(9)
    doc.get("t", type=Text).insert(0, "a😀é")
    summary = validate_update(doc.get_update())
    assert summary.clients == {9: (0, 4)} == {9: (0, validate_state_vector(doc.get_state())[9])}
    assert summary.string_bytes == len("a😀é".encode())


def test_any_values_nest_up_to_max_depth() -> None:
    def nested(depth: int) -> list[object]:
        value: list[object] = []
        for _ in range(depth - 1):
            value = [value]
        return value

    doc = make_doc(9)
    doc.get("m", type=Map)["ok"] = nested(64)
    validate_update(doc.get_update())
    doc.get("m", type=Map)["deep"] = nested(65)
    with pytest.raises(InvalidUpdate, match="nesting deeper than 64"):
        validate_update(doc.get_update())


def test_update_of_a_doc_with_many_clients_validates() -> None:
    docs = [make_doc(1000 + i) for i in range(30)]
    for i, doc in enumerate(docs):
        doc.get("t", type=Text).insert(0, f"client {i} ")
        doc.get("m", type=Map)[str(i)] = [i, {"x": i / 3}]
    merged = make_doc(1)
    for doc in docs:
        merged.apply_update(doc.get_update())
    del merged.get("t", type=Text)[3:40]
    summary = validate_update(merged.get_update(), known_state={})
    assert set(summary.clients) == {1000 + i for i in range(30)}
    assert summary.deleted


# -- the repros from the hardening issue --------------------------------------------------------
def test_validator_never_imports_pycrdt() -> None:
    tree = ast.parse(Path(crdt.validation.__file__).read_text())
    names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert not [name for name in names if name.startswith("pycrdt")]


@pytest.mark.parametrize("name", REPROS)
@pytest.mark.parametrize(
    "mode",
    [
        {},
        {"known_state": {}},
        {"known_state": {1234: 0, 77: 5}, "owned_clients": {1234, 77}},
        {"known_state": {1234: 0, 77: 5}, "foreign_owned": {1234, 77}},
    ],
)
def test_issue_repros_are_refused_quickly_in_every_mode(name: str, mode: dict[str, object]) -> None:
    started = time.perf_counter()
    with pytest.raises(InvalidUpdate):
        validate_update(REPROS[name], **mode)  # type: ignore[arg-type]
    assert time.perf_counter() - started < 10.0  # quadratic work would take minutes; linear is ~0.2 s


def test_non_atomic_repro_is_well_formed_so_it_passes_and_the_room_must_handle_taint() -> None:
    assert validate_update(NON_ATOMIC).clients == {7: (0, 2)}


def test_facts_about_pycrdt_that_the_validator_relies_on() -> None:
    """Run in a child: each of these inputs is well-formed Yjs, and yrs mishandles it."""
    facts = {
        "wrap": update([(5, 0, [string_item("hello")])]).hex(),
        "wrap_delete": update([], {5: [(2**32 + 1, 1)]}).hex(),
        "json_extra_string": update([(5, 0, [b"\x02" + root("a") + u(1) + s("1") + s("2")])]).hex(),
        "hook_without_name": update([(5, 0, [b"\x07" + root("x") + b"\x05"])]).hex(),
        "empty_run": update([(5, 0, [])]).hex(),
        "non_atomic": NON_ATOMIC.hex(),
    }
    code = """
import json, sys, pycrdt
facts = json.loads(sys.stdin.read()); out = {}
def apply(doc, key):
    try:
        doc.apply_update(bytes.fromhex(facts[key])); return "ok"
    except BaseException as exc:
        return type(exc).__name__
doc = pycrdt.Doc(); apply(doc, "wrap"); apply(doc, "wrap_delete")
out["wrap"] = str(doc.get("t", type=pycrdt.Text))
out["json_extra_string"] = apply(pycrdt.Doc(), "json_extra_string")
out["hook_without_name"] = apply(pycrdt.Doc(), "hook_without_name")
doc = pycrdt.Doc(); apply(doc, "wrap"); out["empty_run"] = apply(doc, "empty_run")
doc = pycrdt.Doc(); out["non_atomic"] = apply(doc, "non_atomic")
out["non_atomic_left"] = doc.get("m", type=pycrdt.Map).to_py()
print(json.dumps(out))
"""
    child = run_child(code, json.dumps(facts))
    assert child.returncode == 0, child.stderr[-500:]
    out = json.loads(child.stdout)
    assert out["wrap"] == "hllo"  # the delete at clock 2^32+1 removed clock 1
    assert out["json_extra_string"] == out["hook_without_name"] == "ok"  # Yjs would read these differently
    assert out["empty_run"] == "PanicException"
    assert out["non_atomic"] == "RuntimeError" and out["non_atomic_left"] == {"k": 1.0}
    for key in ("wrap_delete", "json_extra_string", "hook_without_name", "empty_run"):
        with pytest.raises(InvalidUpdate):
            validate_update(bytes.fromhex(facts[key]))


# -- malformed and refused input -----------------------------------------------------------------
REFUSED = [
    (update([(5, 0, [string_item("hi")])]) + b"\x00", "trailing"),
    (update([(5, 0, [string_item("hi")])])[:-3], "malformed update"),
    (update([(5, 0, [b"\x08" + root("a") + u(1) + b"\x70"])]), "unknown Any type tag"),
    (update([(5, 0, [b"\x04" + root("t") + u(2) + b"\xc3\x28"])]), "UTF-8"),
    (update([(5, 0, [b"\x08" + root("a") + u(1) + b"\x7d" + encode_var_int(2**53)])]), "2^53"),
    (update([(5, 0, [b"\x08" + root("a") + u(1) + b"\x75" + u(50)])]), "bytes left"),
    (update([(5, 0, [b"\x06" + root("t") + s("bold") + s("NaN")])]), "not valid JSON"),
    (update([(5, 0, [b"\x05" + root("t") + s("{")])]), "not valid JSON"),
    (update([(5, 0, [b"\x05" + root("t") + s("[" * 65 + "]" * 65)])]), "nesting deeper than 64"),
    (update([(5, 0, [b"\x02" + root("a") + u(1) + s("1")])]), "legacy JSON"),
    (update([(5, 0, [b"\x0b" + root("a")])]), "Move content"),
    (update([(5, 0, [b"\x0c" + root("a")])]), "unknown struct kind 12"),
    (update([(5, 0, [b"\x80" + u(1) + u(0)])]), "unknown struct kind 0"),
    (update([(5, 0, [b"\x07" + root("x") + b"\x05" + s("hook")])]), "type ref 5"),
    (update([(5, 0, [b"\x07" + root("x") + b"\x07"])]), "type ref 7"),
    (update([(5, 0, [b"\x07" + root("x") + b"\x0f"])]), "type ref 15"),
    (update([(5, 0, [b"\x04" + u(2) + s("t") + s("hi")])]), "parent info 2"),
    (update([(5, 0, [b"\x00" + u(0)])]), "zero-length"),
    (update([(5, 0, [string_item("")])]), "zero-length"),
    (update([(5, 0, [b"\x08" + root("a") + u(0)])]), "zero-length"),
    (update([], {5: [(3, 0)]}), "zero-length"),
    (update([(5, 0, [])]), "empty struct run"),
    (update([(5, 0, [string_item("a")]), (5, 1, [string_item("b")])]), "appears twice"),
    (update([(2**53, 0, [string_item("a")])]), "above 2^53-1"),
    (update([(5, 2**32, [string_item("a")])]), "above 2^32-1"),
    (update([(5, 2**32 - 2, [string_item("abc")])]), "passes 2^32-1"),
    (update([], {5: [(2**32 - 2, 5)]}), "passes 2^32-1"),
]


@pytest.mark.parametrize(("data", "reason"), REFUSED)
def test_malformed_or_ambiguous_updates_are_refused(data: bytes, reason: str) -> None:
    with pytest.raises(InvalidUpdate, match=reason.replace("^", r"\^")):
        validate_update(data)


def test_json_text_depth_is_measured_in_linear_time() -> None:
    def embed(json_text: str) -> bytes:
        return update([(5, 0, [b"\x05" + root("t") + s(json_text)])])

    validate_update(embed('{"a": [' * 32 + "]}" * 32))
    validate_update(update([(5, 0, [b"\x06" + root("t") + s("k") + s('"[[[[ not a bracket"')])]))
    started = time.perf_counter()
    validate_update(embed("[" + "[]," * 300_000 + "[]]"))
    with pytest.raises(InvalidUpdate, match="nesting deeper than 64"):
        validate_update(embed("[" * 65 + '"' + '\\"' * 300_000))  # unclosed string of escaped quotes
    assert time.perf_counter() - started < 10.0  # quadratic work would take minutes; linear is ~0.2 s


def test_limits_are_configurable() -> None:
    data = update([(5, 0, [string_item("abc"), string_item("d")]), (6, 0, [string_item("e")])], {7: [(0, 1)]})
    validate_update(data)
    for limits, reason in [
        (UpdateLimits(max_structs=2), "more than 2 structs"),
        (UpdateLimits(max_clients=2), "more than 2 clients"),
        (UpdateLimits(max_string_bytes=2), "exceeds max_string_bytes"),
        (UpdateLimits(max_delete_ranges=0), "more than 0 delete ranges"),
    ]:
        with pytest.raises(InvalidUpdate, match=reason):
            validate_update(data, limits=limits)


def test_type_nesting_built_by_one_update_is_capped() -> None:
    def chain(depth: int) -> bytes:
        # even levels are client 2, odd ones client 1 (written after it): forward references
        runs: dict[int, list[bytes]] = {1: [], 2: []}
        for level in range(depth):
            client = 2 - level % 2
            parent = root("m") if level == 0 else u(0) + u(2 - (level - 1) % 2) + u((level - 1) // 2)
            runs[client].append(b"\x07" + parent + b"\x01")
        return update([(2, 0, runs[2]), (1, 0, runs[1])])

    def siblings(depth: int) -> bytes:
        # T1 in root; S_k (Any) inside T_k by parent id; T_k+1 right of S_k by origin only
        structs = [b"\x07" + root("a") + b"\x00"]
        for k in range(depth - 1):
            inside = b"\x08" + u(0) + u(9) + u(2 * k) + u(1) + b"\x7e"
            structs += [inside, b"\x87" + u(9) + u(2 * k + 1) + b"\x00"]
        return update([(9, 0, structs)])

    for build in (chain, siblings):
        assert validate_update(build(256)).type_count == 256
        with pytest.raises(InvalidUpdate, match="nested deeper than 256"):
            validate_update(build(257))
    cycle = update([(9, 0, [b"\x87" + u(9) + u(1) + b"\x00", b"\x87" + u(9) + u(0) + b"\x00"])])
    validate_update(cycle, limits=UpdateLimits(max_type_depth=1))  # terminates


# -- anti-poisoning rules -----------------------------------------------------------------------
def test_delete_ranges_must_stay_within_the_known_state() -> None:
    known = {5: 10}
    validate_update(update([], {5: [(8, 2)]}), known_state=known)
    with pytest.raises(InvalidUpdate, match="delete range beyond known state of client 5"):
        validate_update(update([], {5: [(8, 3)]}), known_state=known)
    with pytest.raises(InvalidUpdate, match="beyond known state of client 6"):
        validate_update(update([], {6: [(0, 1)]}), known_state=known, owned_clients={6})
    # deleting what the same update brings is fine
    validate_update(update([(5, 10, [string_item("abcde")])], {5: [(8, 7)]}), known_state=known)
    validate_update(update([], {6: [(0, 1)]}))  # without known state only absolute bounds apply


def test_foreign_owned_clients_may_only_be_resent_up_to_their_known_clock() -> None:
    known = {5: 10}
    resend = update([(5, 6, [string_item("abcd")])])
    validate_update(resend, known_state=known, foreign_owned={5})
    extend = update([(5, 8, [string_item("abcd")])])
    with pytest.raises(InvalidUpdate, match="owned by another connection"):
        validate_update(extend, known_state=known, foreign_owned={5})
    validate_update(extend, known_state=known)
    validate_update(extend, known_state=known, foreign_owned={5}, owned_clients={5})


def test_clock_advance_is_bounded_for_clients_the_sender_does_not_own() -> None:
    limits = UpdateLimits(max_clock_advance=100)
    big_gc = update([(5, 0, [b"\x00" + u(101)])])
    with pytest.raises(InvalidUpdate, match="advance its clock by 101"):
        validate_update(big_gc, known_state={}, limits=limits)
    validate_update(big_gc, known_state={}, owned_clients={5}, limits=limits)
    validate_update(big_gc, limits=limits)
    validate_update(update([(5, 0, [b"\x00" + u(100)])]), known_state={}, limits=limits)


def test_reconnecting_client_with_an_overlapping_step2_passes() -> None:
    server, client, other = make_doc(1), make_doc(2), make_doc(3)
    other.get("t", type=Text).insert(0, "from a peer that is online ")
    client.apply_update(other.get_update())
    client.get("t", type=Text).insert(0, "before disconnect ")
    server.apply_update(client.get_update())
    old_server_state = make_doc().get_state()  # the client remembers nothing: it resends everything
    client.get("t", type=Text).insert(5, "offline ")
    del client.get("t", type=Text)[0:3]
    step2 = client.get_update(old_server_state)
    known = validate_state_vector(server.get_state())
    summary = validate_update(step2, known_state=known, owned_clients={2}, foreign_owned={3})
    assert summary.clients[2][0] < known[2] < summary.clients[2][1]  # overlaps, then extends
    validate_update(step2, known_state=known, foreign_owned={3})


def test_fresh_client_offline_edits_pass() -> None:
    server = make_doc(1)
    server.get("t", type=Text).insert(0, "server text")
    offline = make_doc(77)
    offline.get("m", type=Map)["k"] = Map({"nested": Text("x")})
    offline.get("t", type=Text).insert(0, "mine")
    del offline.get("t", type=Text)[1:3]
    known = validate_state_vector(server.get_state())
    validate_update(offline.get_update(), known_state=known)
    # a Yjs client that created and deleted content offline sends GC structs for it
    gc_then_text = update([(77, 0, [b"\x00" + u(40), string_item("kept")])], {77: [(40, 1)]})
    assert validate_update(gc_then_text, known_state=known).clients == {77: (0, 44)}


def test_random_edit_sessions_with_a_server_in_the_loop() -> None:
    op = st.tuples(st.integers(0, 2), st.integers(0, 6), st.integers(0, 10**6), st.text(max_size=4))

    @settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(op, min_size=10, max_size=60))
    def session(ops: list[tuple[int, int, int, str]]) -> None:
        server = make_doc(1)
        peers = [make_doc(10 + i) for i in range(3)]
        for peer in peers:
            peer.observe(lambda event: deliver(event.update))

        def deliver(data: bytes) -> None:
            known = validate_state_vector(server.get_state())
            summary: UpdateSummary = validate_update(data, known_state=known)
            server.apply_update(data)
            state = validate_state_vector(server.get_state())
            assert all(state[c] >= end for c, (_first, end) in summary.clients.items())

        for who, op, n, text in ops:
            peer = peers[who]
            t, m, a = peer.get("t", type=Text), peer.get("m", type=Map), peer.get("a", type=Array)
            bounds = [0]
            for ch in str(t):
                bounds.append(bounds[-1] + len(ch.encode()))
            if op == 0 and text:
                t.insert(bounds[n % len(bounds)], text, {"b": True} if n % 3 == 0 else None)
            elif op == 1 and len(bounds) > 1:
                start = n % (len(bounds) - 1)
                del t[bounds[start] : bounds[min(len(bounds) - 1, start + 1 + n % 3)]]
            elif op == 2:
                m[text] = {"n": n, "l": [text, n / 7]} if n % 2 else Map({"inner": Array([n, Text(text)])})
            elif op == 3:
                a.insert(n % (len(a) + 1), Array([n]) if n % 2 else text)
            elif op == 4 and len(a):
                del a[n % len(a)]
            elif op == 5 and text in m:
                del m[text]
            else:  # sync this peer with the server's state
                peer.apply_update(server.get_update(peer.get_state()))
        state = validate_state_vector(server.get_state())
        for peer in peers:
            assert all(state[c] >= k for c, k in validate_state_vector(peer.get_state()).items())

    session()


# -- robustness: hostile bytes only ever raise InvalidUpdate, and accepted ones do not crash pycrdt --
def mutate(rng: random.Random, data: bytes, seeds: list[bytes]) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op, i = rng.random(), rng.randrange(len(out) + 1)
        if op < 0.4 and i < len(out):
            out[i] ^= 1 << rng.randrange(8)
        elif op < 0.6 and i < len(out):
            out[i] = rng.choice([0, 1, 0x7F, 0x80, 0xFF, rng.randrange(256)])
        elif op < 0.7:
            del out[i:]
        elif op < 0.85:
            out[i:i] = rng.randbytes(rng.randint(1, 4))
        else:
            other = rng.choice(seeds)
            out = out[:i] + other[rng.randrange(len(other) + 1) :]
    return bytes(out)


CRASH_PROBE = """
import resource, sys, pycrdt
resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
lines = sys.stdin.read().split()
base = bytes.fromhex(lines[0])
for i, line in enumerate(lines[1:]):
    print(i, file=sys.stderr, flush=True)
    for start in (base, b""):
        doc = pycrdt.Doc()
        if start:
            doc.apply_update(start)
        try:
            doc.apply_update(bytes.fromhex(line))
        except BaseException:
            pass
        try:
            pycrdt.Doc().apply_update(doc.get_update())
        except BaseException:
            pass
print("done", len(lines) - 1)
"""


def test_hostile_bytes_only_raise_invalid_update_and_accepted_ones_do_not_crash_pycrdt() -> None:
    doc, updates = build_corpus()
    seeds = [*updates, doc.get_update()]
    accepted: list[bytes] = []

    def check(data: bytes) -> None:
        started = time.perf_counter()
        try:
            validate_update(data, known_state={CLIENT: 10**6} if len(data) % 2 else None)
            accepted.append(data)
        except InvalidUpdate:
            pass
        assert time.perf_counter() - started < 5.0  # bounded work per input (generous: shared CI cores)

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.one_of(st.binary(max_size=300), st.tuples(st.integers(0, 2**32), st.sampled_from(seeds))))
    def fuzz(example: bytes | tuple[int, bytes]) -> None:
        if isinstance(example, bytes):
            check(example)
        else:
            check(mutate(random.Random(example[0]), example[1], seeds))

    fuzz()
    rng = random.Random(2024)
    for _ in range(3000):
        check(mutate(rng, rng.choice(seeds), seeds))
    check(rng.randbytes(1 << 20))
    assert len(accepted) > 100
    sample = accepted[:1500]
    child = run_child(CRASH_PROBE, "\n".join(x.hex() for x in [seeds[-1], *sample]))
    last = [line for line in child.stderr.split() if line.isdigit()]
    culprit = sample[int(last[-1])].hex() if last else "?"
    assert child.returncode == 0, f"pycrdt died ({child.returncode}) on accepted update {culprit}"
    assert child.stdout.strip() == f"done {len(sample)}"


# -- state vectors -------------------------------------------------------------------------------
def test_state_vectors() -> None:
    doc, _ = build_corpus()
    end = validate_update(doc.get_update()).clients[CLIENT][1]
    assert validate_state_vector(doc.get_state()) == {CLIENT: end}
    assert validate_state_vector(b"\x00") == {}
    for bad, reason in [
        (b"", "malformed"),
        (u(2) + u(5) + u(1), "malformed"),
        (u(1) + u(5) + u(1) + b"\x00", "trailing"),
        (u(2) + u(5) + u(1) + u(5) + u(2), "twice"),
        (u(1) + u(5) + u(2**32), "2\\^32"),
        (bytes.fromhex("80808040"), "bytes left"),
    ]:
        with pytest.raises(InvalidUpdate, match=reason):
            validate_state_vector(bad)
