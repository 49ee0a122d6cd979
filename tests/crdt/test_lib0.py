"""lib0 codec: round trips and the documented failure modes on arbitrary bytes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crdt.errors import DecodeError, MessageTooLarge
from crdt.lib0 import (
    Decoder,
    encode_var_bytes,
    encode_var_int,
    encode_var_string,
    encode_var_uint,
)


@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_var_uint_round_trip(value: int) -> None:
    encoded = encode_var_uint(value)
    assert len(encoded) <= 10
    decoder = Decoder(encoded)
    assert decoder.read_var_uint() == value
    assert decoder.at_end()


@given(st.integers(min_value=-(2**62), max_value=2**62))
def test_var_int_round_trip(value: int) -> None:
    decoder = Decoder(encode_var_int(value))
    assert decoder.read_var_int() == value
    assert decoder.at_end()


@given(st.binary(max_size=300), st.text(max_size=100))
def test_var_bytes_and_string_round_trip(data: bytes, text: str) -> None:
    decoder = Decoder(encode_var_bytes(data) + encode_var_string(text))
    assert decoder.read_var_bytes() == data
    assert decoder.read_var_string() == text
    assert decoder.at_end()


def test_known_encodings_match_lib0() -> None:
    assert encode_var_uint(0) == b"\x00"
    assert encode_var_uint(127) == b"\x7f"
    assert encode_var_uint(128) == b"\x80\x01"
    assert encode_var_uint(300) == b"\xac\x02"
    assert encode_var_int(-1) == b"\x41"
    assert encode_var_int(64) == b"\x80\x01"


def test_varint_longer_than_ten_bytes_is_refused_without_quadratic_work() -> None:
    long_varint = b"\xff" * 200_000 + b"\x01"
    with pytest.raises(DecodeError, match="longer than 10 bytes"):
        Decoder(long_varint).read_var_uint()


def test_length_prefix_past_the_end_is_refused() -> None:
    with pytest.raises(DecodeError):
        Decoder(encode_var_uint(1000) + b"abc").read_var_bytes()


def test_length_over_cap_is_message_too_large() -> None:
    with pytest.raises(MessageTooLarge):
        Decoder(encode_var_uint(1000) + b"x" * 1000).read_var_bytes(max_length=10)


def test_invalid_utf8_string_is_refused() -> None:
    with pytest.raises(DecodeError, match="UTF-8"):
        Decoder(encode_var_bytes(b"\xff\xfe")).read_var_string()


@settings(max_examples=500)
@given(st.binary(max_size=64))
def test_arbitrary_bytes_only_raise_decode_error(data: bytes) -> None:
    decoder = Decoder(data)
    try:
        while not decoder.at_end():
            decoder.read_var_bytes(max_length=1 << 20)
    except DecodeError:
        pass
