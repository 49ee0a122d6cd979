"""The pure token check: `verify(token, document, now, secret)` with an injected clock, and every refusal."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
from typing import Any

import pytest

from server.auth import Role
from server.tokens import (
    MAX_TOKEN_BYTES,
    Claims,
    TokenError,
    decode,
    encode,
    grant_role,
    issue,
    parse_duration,
    parse_grant,
    verify,
)

SECRET = "test-secret-0123456789-abcdefghij"
NOW = 1_800_000_000.0


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(
    header: dict[str, Any], payload: Any, secret: str = SECRET, raw_payload: bytes | None = None
) -> str:
    """A token built by hand (any header, any payload), signed with HS256 over what it carries."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(raw_payload or json.dumps(payload).encode())}"
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def payload(**overrides: Any) -> dict[str, Any]:
    base = {"sub": "ana", "name": "Ana", "grants": {"team/*": "editor"}, "exp": NOW + 3600, "iat": NOW}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def token(**overrides: Any) -> str:
    return forge({"alg": "HS256", "typ": "JWT"}, payload(**overrides))


def refused(tok: str, reason: str, now: float = NOW, secret: str = SECRET) -> TokenError:
    with pytest.raises(TokenError) as info:
        verify(tok, "team/notes", now, secret)
    assert info.value.reason == reason, info.value.detail
    assert info.value.detail  # a clear message, never empty
    return info.value


# -- accepted ------------------------------------------------------------------------------------------------
def test_a_valid_token_yields_identity_and_role() -> None:
    identity, role = verify(token(), "team/notes", NOW, SECRET)
    assert (identity.user_id, identity.name, role) == ("ana", "Ana", Role.EDITOR)
    assert identity.expires_at == NOW + 3600
    assert verify(token(), "other/notes", NOW, SECRET)[1] == Role.NONE


def test_issue_round_trips_through_verify() -> None:
    tok = issue("bo", "Bo", {"a/*": Role.VIEWER, "a/b": Role.OWNER}, now=NOW, ttl=60, secret=SECRET)
    assert verify(tok, "a/b", NOW + 59, SECRET)[1] == Role.OWNER
    assert verify(tok, "a/c", NOW + 59, SECRET)[1] == Role.VIEWER
    refused(tok, "expired", now=NOW + 60)


def test_most_specific_grant_wins() -> None:
    grants = (
        ("*", Role.VIEWER),
        ("team/*", Role.EDITOR),
        ("team/secret/*", Role.NONE),
        ("team/x", Role.OWNER),
    )
    assert grant_role(grants, "misc") == Role.VIEWER
    assert grant_role(grants, "team/plan") == Role.EDITOR
    assert grant_role(grants, "team/secret/a") == Role.NONE
    assert grant_role(grants, "team/x") == Role.OWNER
    assert grant_role((), "team/x") == Role.NONE


def test_invite_tokens_only_work_on_their_document() -> None:
    tok = issue(
        "guest:1", "G", {"d/1": Role.COMMENTER}, now=NOW, ttl=60, secret=SECRET, document="d/1", invite="i1"
    )
    identity, role = verify(tok, "d/1", NOW, SECRET)
    assert (role, identity.document, identity.invite) == (Role.COMMENTER, "d/1", "i1")
    assert verify(tok, "d/2", NOW, SECRET)[1] == Role.NONE


def test_nbf_in_the_past_and_no_iat_are_fine() -> None:
    assert verify(token(nbf=NOW - 1, iat=None), "team/a", NOW, SECRET)[1] == Role.EDITOR


# -- refused -------------------------------------------------------------------------------------------------
def test_wrong_signature() -> None:
    refused(forge({"alg": "HS256"}, payload(), secret="another-secret"), "bad_signature")
    tok = token()
    head, body, sig = tok.split(".")
    tampered = b64(json.dumps(payload(grants={"*": "owner"})).encode())
    refused(f"{head}.{tampered}.{sig}", "bad_signature")
    refused(f"{head}.{body}.", "bad_signature")


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "HS512", "RS256", "", None, 256])
def test_only_hs256_is_accepted(alg: Any) -> None:
    header = {"typ": "JWT"} if alg is None else {"alg": alg, "typ": "JWT"}
    unsigned = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload()).encode())}."
    refused(unsigned, "bad_algorithm")
    refused(forge(header, payload()), "bad_algorithm")


def test_future_nbf() -> None:
    error = refused(token(nbf=NOW + 10), "not_yet_valid")
    assert "not valid before" in error.detail
    assert verify(token(nbf=NOW + 10), "team/a", NOW + 10, SECRET)[1] == Role.EDITOR


def test_expired() -> None:
    refused(token(exp=NOW), "expired")
    refused(token(exp=NOW - 3600), "expired")
    assert verify(token(exp=NOW + 0.5), "team/a", NOW, SECRET)[1] == Role.EDITOR


def test_huge_tokens_are_refused_before_any_parsing() -> None:
    grants = {f"team/{i:05d}": "viewer" for i in range(400)}
    refused(token(grants=grants), "too_large")
    refused("a" * (MAX_TOKEN_BYTES + 1), "too_large")
    refused("x" * 10_000_000, "too_large")


@pytest.mark.parametrize(
    "garbage",
    ["", "abc", "a.b", "a.b.c.d", "é.é.é", "!!!.@@@.###", "a.b.c", "e30.e30.", "W10.e30.", "bnVsbA.e30."],
)
def test_garbage_is_refused_cleanly(garbage: str) -> None:
    with pytest.raises(TokenError) as info:
        verify(garbage, "team/a", NOW, SECRET)
    assert info.value.reason in {"missing", "malformed", "bad_algorithm", "bad_signature"}


def test_deep_json_in_the_header_is_refused() -> None:
    deep = b64(b"[" * 3000 + b"]" * 3000)
    refused(f"{deep}.e30.", "malformed")


@pytest.mark.parametrize(
    "claims",
    [
        payload(exp=None),
        payload(exp="tomorrow"),
        payload(exp=True),
        payload(sub=None),
        payload(sub=""),
        payload(sub=42),
        payload(sub="x" * 1000),
        payload(sub="a\nb"),
        payload(grants=["team/*"]),
        payload(grants={"team/*": "admin"}),
        payload(grants={"te*am": "editor"}),
        payload(grants={"../x": "editor"}),
        payload(grants={"team/*": 3}),
        payload(nbf="soon"),
        payload(doc="a//b"),
    ],
)
def test_bad_claims_are_refused(claims: dict[str, Any]) -> None:
    refused(forge({"alg": "HS256"}, claims), "bad_claims")


def test_a_correctly_signed_non_object_payload_is_malformed() -> None:
    refused(forge({"alg": "HS256"}, None, raw_payload=b"[1,2]"), "malformed")
    refused(forge({"alg": "HS256"}, None, raw_payload=b"\xff\xfe"), "malformed")


def test_crit_headers_are_refused() -> None:
    refused(forge({"alg": "HS256", "crit": ["exp"]}, payload()), "malformed")


def test_decode_never_raises_anything_else() -> None:
    samples = [token(), token()[:-3], token().replace(".", "..", 1), "\x00" * 50, "..", "...."]
    for sample in samples:
        with contextlib.suppress(TokenError):
            decode(sample, SECRET, NOW)


# -- helpers -------------------------------------------------------------------------------------------------
def test_parse_grant_and_duration() -> None:
    assert parse_grant("team/*=editor") == ("team/*", Role.EDITOR)
    assert parse_grant("a=b=viewer") == ("a=b", Role.VIEWER)
    assert parse_grant("*=Owner") == ("*", Role.OWNER)
    for bad in ("team/*", "=editor", "team/*=admin", "a*b=viewer"):
        with pytest.raises(ValueError):
            parse_grant(bad)
    assert [parse_duration(t) for t in ("90s", "15m", "8h", "7d", "2w", "30")] == [
        90,
        900,
        28800,
        604800,
        1209600,
        30,
    ]
    for bad in ("", "0", "-5m", "8 hours", "h"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_encode_refuses_an_empty_secret_and_oversized_claims() -> None:
    claims = Claims("a", "A", (), NOW + 1)
    with pytest.raises(ValueError):
        encode(claims, "")
    big = Claims("a", "A", tuple((f"d/{i:05d}", Role.VIEWER) for i in range(500)), NOW + 1)
    with pytest.raises(ValueError):
        encode(big, SECRET)
