"""Atheris fuzz target: the wire codec, sync session, awareness, Hocuspocus and the validator; pycrdt
gets every update the validator accepts (a native crash there is a validator gap)."""

# Not part of the test suite. Run from the repository root:
#
#   . .venv/bin/activate && pip install atheris
#   python fuzz/fuzz_codec.py --make-corpus fuzz/corpus          # seeds: real messages and updates
#   python fuzz/fuzz_codec.py fuzz/corpus -max_total_time=300 -rss_limit_mb=4096 -timeout=10
#
# The first input byte picks the target, the rest is its input. Only `crdt.errors.CoreError` (and,
# for pycrdt, the failures `crdt.document.Document.apply` turns into `ApplyFailed`) may come out;
# anything else, a timeout or a native crash is a finding and libFuzzer writes the input to
# crash-*/timeout-* in the working directory. Reproduce with `python fuzz/fuzz_codec.py <file>`.

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import atheris  # type: ignore[import-untyped]
from pycrdt import Array, Doc, Map, Text, XmlElement, XmlFragment, XmlText

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

with atheris.instrument_imports(include=["crdt"]):  # coverage feedback from our code only
    from crdt.awareness import AwarenessEntry, decode_awareness, encode_awareness
    from crdt.document import Document
    from crdt.errors import CoreError
    from crdt.hocuspocus import Sender, decode_frame
    from crdt.lib0 import encode_var_string
    from crdt.messages import (
        AwarenessMessage,
        QueryAwareness,
        SyncStep1,
        SyncStep2,
        SyncUpdate,
        decode_message,
        encode_message,
    )
    from crdt.sync import Role, SyncSession
    from crdt.validation import validate_state_vector, validate_update

TARGETS = 7


def _base() -> tuple[list[bytes], bytes, bytes]:
    doc: Doc[Any] = Doc(client_id=4_242_424)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    text = doc.get("t", type=Text)
    text += "hello 😀 é"
    text.format(0, 3, {"bold": True})
    text.insert_embed(2, {"image": "x.png"})
    del text[0:2]
    map_ = doc.get("m", type=Map)
    map_.update({"i": 1, "f": 1.5, "s": "str", "b": b"\x00\x01", "n": None})
    map_["nested"] = Map({"inner": Array([1, 2, Text("t")])})
    array = doc.get("a", type=Array)
    array.extend([Map({"z": 1}), Array([Array([1])])])
    del array[0]
    xml = doc.get("x", type=XmlFragment)
    xml.children.append(XmlElement("p", {"class": "c"}, [XmlText("hi"), XmlElement("b")]))
    return updates, doc.get_update(), doc.get_state()


UPDATES, BASE_STATE, BASE_VECTOR = _base()


def seeds() -> list[bytes]:
    awareness = encode_awareness([AwarenessEntry(7, 3, '{"user":{"name":"ana"}}')])
    messages = [
        encode_message(SyncStep1(BASE_VECTOR)),
        encode_message(SyncStep2(BASE_STATE)),
        *(encode_message(SyncUpdate(u)) for u in UPDATES),
        encode_message(AwarenessMessage(awareness)),
        encode_message(QueryAwareness()),
    ]
    out = [bytes([0]) + m for m in messages] + [bytes([1]) + m for m in messages]
    out += [bytes([2]) + awareness]
    out += [bytes([t]) + u for t in (3, 4) for u in [*UPDATES, BASE_STATE]]
    out += [bytes([5]) + BASE_VECTOR]
    out += [bytes([6]) + encode_var_string("team/doc") + m for m in messages]
    return out


def one_input(data: bytes) -> None:
    if not data:
        return
    target, body = data[0] % TARGETS, data[1:]
    try:
        if target == 0:
            decode_message(body, 1 << 20)
        elif target == 1:
            session = SyncSession(Role.SERVER, acks=True, max_message_size=1 << 20)
            session.receive_data(body)
            for frame in session.data_to_send():
                decode_message(frame)
        elif target == 2:
            decode_awareness(body)
        elif target in (3, 4):
            known = None if target == 3 else {4_242_424: 10**6}
            validate_update(body, known_state=known)
            document = Document(Doc()) if target == 3 else _loaded()
            try:
                document.apply(body)  # accepted: pycrdt must not crash (ApplyFailed is fine)
                document.diff(BASE_VECTOR)
                Doc().apply_update(document.encode_state())
            except CoreError:
                pass
            except BaseException as exc:  # pycrdt's PanicException on reloading a state
                if type(exc).__name__ != "PanicException" and not isinstance(exc, Exception):
                    raise
            finally:
                document.close()
        elif target == 5:
            validate_state_vector(body)
            _loaded().diff(body)
        else:
            decode_frame(body, Sender.CLIENT)
    except CoreError:
        pass


def _loaded() -> Document:
    doc: Doc[Any] = Doc()
    doc.apply_update(BASE_STATE)
    return Document(doc)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--make-corpus":
        folder = Path(sys.argv[2])
        folder.mkdir(parents=True, exist_ok=True)
        for i, seed in enumerate(seeds()):
            (folder / f"seed-{i:03d}").write_bytes(seed)
        print(f"{len(seeds())} seeds in {folder}")
        return
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
