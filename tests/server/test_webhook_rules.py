"""Webhook rules without I/O: URL validation, the SSRF address rule, signatures, payloads, backoff."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.webhook_rules import (
    MAX_URL_CHARS,
    TargetRefused,
    backoff,
    check_address,
    check_target,
    is_forwarded,
    parse_target,
    payload,
    signature,
)
from tests.support.node import unavailable


def test_targets_are_parsed_into_connection_and_request() -> None:
    target = parse_target("https://hooks.example.com/in/x?a=1")
    assert (target.scheme, target.host, target.port, target.target) == (
        "https",
        "hooks.example.com",
        443,
        "/in/x?a=1",
    )
    assert target.host_header == "hooks.example.com"
    plain = parse_target("http://example.com:8080")
    assert (plain.port, plain.target, plain.host_header) == (8080, "/", "example.com:8080")
    v6 = parse_target("http://[2001:db8::1]:81/h")
    assert (v6.host, v6.host_header) == ("2001:db8::1", "[2001:db8::1]:81")


@pytest.mark.parametrize(
    "url",
    [
        "",
        "ftp://example.com/x",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "https://",
        "https://user:pw@example.com/",
        "https://example.com:99999/",
        "https://example.com:0/",
        "https://exa mple.com/",
        "https://example.com/\r\nX-Injected: 1",
        "https://bücher.example/",
        "https://example.com/" + "a" * MAX_URL_CHARS,
    ],
)
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(TargetRefused):
        check_target(url, allow_private=True)


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "172.16.0.9", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
     "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "224.0.0.1", "255.255.255.255"],
)  # fmt: skip
def test_private_and_special_addresses_are_refused(address: str) -> None:
    with pytest.raises(TargetRefused):
        check_address(address, allow_private=False)
    host = f"[{address}]" if ":" in address else address
    with pytest.raises(TargetRefused):
        check_target(f"http://{host}/hook", allow_private=False)


def test_the_private_setting_opens_loopback_but_never_multicast() -> None:
    check_address("127.0.0.1", allow_private=True)
    check_address("::1", allow_private=True)
    check_target("http://localhost:9/x", allow_private=True)
    with pytest.raises(TargetRefused):
        check_target("http://localhost:9/x", allow_private=False)
    with pytest.raises(TargetRefused):
        check_address("224.0.0.1", allow_private=True)


def test_public_addresses_and_names_pass() -> None:
    for address in ("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "8.8.8.8"):
        check_address(address, allow_private=False)
    check_target("https://hooks.example.com/in", allow_private=False)  # names: checked when resolved


@given(st.text(), st.binary())
def test_the_signature_is_the_hmac_sha256_of_the_body(secret: str, body: bytes) -> None:
    secret = secret.encode("utf-8", "replace").decode("utf-8")
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert signature(secret, body) == f"sha256={expected}"


def test_the_payload_carries_ids_event_document_and_timestamp() -> None:
    body = json.loads(payload("d" * 32, "w" * 32, "comment.added", "team/a", 1700000000.12345, {"seq": 3}))
    assert body == {
        "id": "d" * 32,
        "webhook": "w" * 32,
        "event": "comment.added",
        "document": "team/a",
        "timestamp": 1700000000.123,
        "data": {"seq": 3},
    }


@given(st.integers(1, 60), st.floats(0.01, 100), st.floats(0.01, 10_000), st.integers(0, 2**32))
def test_backoff_doubles_within_its_jitter_and_respects_the_cap(
    attempts: int, base: float, cap: float, seed: int
) -> None:
    delay = backoff(attempts, base, cap, random.Random(seed))
    nominal = min(cap, base * 2.0 ** (attempts - 1))
    assert nominal / 2 <= delay <= nominal


def test_only_comment_and_session_events_are_forwarded() -> None:
    assert is_forwarded("comment.added") and is_forwarded("session.started")
    assert (
        not is_forwarded("lagged") and not is_forwarded("history.restored") and not is_forwarded("commentary")
    )


# -- the verification examples of docs/WEBHOOKS.md accept our signature and refuse a forged one -------------
DOCS = Path(__file__).resolve().parents[2] / "docs" / "WEBHOOKS.md"
SECRET = "e" * 64


def fresh_body() -> bytes:
    """Signed now: the examples refuse bodies older than 5 minutes (and collection is long before)."""
    return payload("d" * 32, "w" * 32, "comment.added", "team/a", time.time(), {"seq": 1}).encode()


def example(language: str) -> str:
    found = re.search(rf"```{language}\n(.*?)```", DOCS.read_text(), re.S)
    assert found, f"no {language} example in {DOCS}"
    return found.group(1)


def test_the_python_example_verifies_our_signature() -> None:
    scope: dict[str, Any] = {}
    exec(example("python"), scope)
    verify = scope["verify"]
    body = fresh_body()
    assert verify(SECRET, body, signature(SECRET, body))["event"] == "comment.added"
    for forged in ("", signature("another", body), signature(SECRET, body + b" ")):
        with pytest.raises(ValueError):
            verify(SECRET, body, forged)
    old = payload("d" * 32, "w" * 32, "comment.added", "team/a", time.time() - 3600, {}).encode()
    with pytest.raises(ValueError, match="too old"):
        verify(SECRET, old, signature(SECRET, old))


def test_the_node_example_verifies_our_signature() -> None:
    node = shutil.which("node")
    if node is None:
        unavailable("the Node signature example", "`node` is not on PATH")
    assert node is not None
    body = fresh_body()
    script = example("js") + (
        "const [secret, body, good, bad] = process.argv.slice(1);\n"
        "console.log(verify(secret, Buffer.from(body), good).event);\n"
        "try { verify(secret, Buffer.from(body), bad); console.log('accepted'); }"
        " catch (e) { console.log(e.message); }\n"
    )
    args = [node, "-e", script, SECRET, body.decode(), signature(SECRET, body), signature("x", body)]
    result = subprocess.run(args, capture_output=True, text=True, timeout=30, check=True)
    assert result.stdout.split("\n")[:2] == ["comment.added", "bad signature"]
