"""Document names: validation and normalisation of the names that appear in URLs."""

from __future__ import annotations

import unicodedata

MAX_NAME_CHARS = 200
MAX_NAME_BYTES = 600


class InvalidName(ValueError):
    """A document name that cocreate refuses; `str()` says why."""


def normalize_name(raw: str) -> str:
    """Return the canonical (NFC) form of a document name, or raise `InvalidName`.

    Names are `/`-separated segments: no empty, `.` or `..` segment, no control or
    format characters, no surrounding whitespace, at most 200 characters.
    """
    name = unicodedata.normalize("NFC", raw)
    if not name:
        raise InvalidName("document name is empty")
    if len(name) > MAX_NAME_CHARS or len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise InvalidName(f"document name longer than {MAX_NAME_CHARS} characters")
    for char in name:
        category = unicodedata.category(char)
        if category in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp") or char == "\\":
            raise InvalidName(f"document name contains a forbidden character U+{ord(char):04X}")
    for segment in name.split("/"):
        if not segment:
            raise InvalidName("document name has an empty path segment")
        if segment in (".", "..", "-"):
            raise InvalidName(
                "document name has a '.', '..' or '-' segment ('-' separates sub-resources in URLs)"
            )
        if segment != segment.strip():
            raise InvalidName("a path segment of the document name starts or ends with whitespace")
    return name
