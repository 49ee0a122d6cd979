"""lib0 binary encoding (varUint, varInt, varUint8Array, varString) with hard caps on every read."""

from __future__ import annotations

from crdt.errors import DecodeError, MessageTooLarge

MAX_VARINT_BYTES = 10
"""A lib0 varUint holding a 64-bit value needs at most 10 bytes; longer ones are refused."""

MAX_SAFE_INTEGER = 2**53 - 1
"""The largest integer a JavaScript peer can represent exactly."""


class Decoder:
    """Reads lib0 values from a bytes buffer; every read is bounded by the buffer and the caps."""

    __slots__ = ("_data", "_end", "pos")

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self._data = data
        self._end = len(data)
        self.pos = pos

    @property
    def remaining(self) -> int:
        return self._end - self.pos

    def at_end(self) -> bool:
        return self.pos >= self._end

    def read_uint8(self) -> int:
        pos = self.pos
        if pos >= self._end:
            raise DecodeError("unexpected end of message")
        self.pos = pos + 1
        return self._data[pos]

    def read_var_uint(self) -> int:
        data = self._data
        pos = self.pos
        end = self._end
        if pos < end:
            byte = data[pos]
            if byte < 0x80:  # the common one-byte case
                self.pos = pos + 1
                return byte
        value = 0
        shift = 0
        limit = min(end, pos + MAX_VARINT_BYTES)
        while pos < limit:
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                self.pos = pos
                return value
            shift += 7
        if limit == end and end - self.pos < MAX_VARINT_BYTES:
            raise DecodeError("unexpected end of message inside a varint")
        raise DecodeError("varint longer than 10 bytes")

    def read_var_int(self) -> int:
        """A lib0 signed varint: sign in bit 6 of the first byte, 6 then 7 bits per byte."""
        first = self.read_uint8()
        value = first & 0x3F
        negative = bool(first & 0x40)
        shift = 6
        byte = first
        count = 1
        while byte & 0x80:
            if count >= MAX_VARINT_BYTES:
                raise DecodeError("varint longer than 10 bytes")
            byte = self.read_uint8()
            count += 1
            value |= (byte & 0x7F) << shift
            shift += 7
        return -value if negative else value

    def read_bytes(self, length: int) -> bytes:
        pos = self.pos
        if length > self._end - pos:
            raise DecodeError("length prefix runs past the end of the message")
        self.pos = pos + length
        return self._data[pos : pos + length]

    def read_var_bytes(self, max_length: int | None = None) -> bytes:
        length = self.read_var_uint()
        if max_length is not None and length > max_length:
            raise MessageTooLarge(f"payload of {length} bytes exceeds the cap of {max_length}")
        return self.read_bytes(length)

    def read_var_string(self, max_length: int | None = None) -> str:
        raw = self.read_var_bytes(max_length)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError("string is not valid UTF-8") from exc

    def read_rest(self) -> bytes:
        rest = self._data[self.pos : self._end]
        self.pos = self._end
        return rest


def encode_var_uint(value: int) -> bytes:
    """Encode a non-negative integer as a lib0 varUint."""
    if value < 0:
        raise ValueError("varUint cannot encode a negative number")
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_var_int(value: int) -> bytes:
    """Encode an integer as a lib0 signed varInt."""
    negative = value < 0
    magnitude = -value if negative else value
    first = (magnitude & 0x3F) | (0x40 if negative else 0)
    magnitude >>= 6
    if magnitude:
        first |= 0x80
    out = bytearray((first,))
    while magnitude:
        byte = magnitude & 0x7F
        magnitude >>= 7
        out.append(byte | (0x80 if magnitude else 0))
    return bytes(out)


def encode_var_bytes(data: bytes) -> bytes:
    return encode_var_uint(len(data)) + data


def encode_var_string(text: str) -> bytes:
    return encode_var_bytes(text.encode("utf-8"))
