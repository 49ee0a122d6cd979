"""Translation of SQLAlchemy and driver exceptions into `persistence.base.StorageError`."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from persistence.base import StorageError

#: Everything a database call may raise besides our own errors. `OSError` covers refused and
#: timed-out connections (asyncpg raises them raw while connecting) and `TimeoutError`.
DRIVER_ERRORS: tuple[type[Exception], ...] = (
    SQLAlchemyError,
    OSError,
    sqlite3.Error,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
)

_MAX_MESSAGE = 300


def describe(exc: BaseException) -> str:
    """A short, one-line description of a driver error, without SQL text or parameters."""
    inner: BaseException = exc
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        inner = exc.orig
    text = str(inner).strip().splitlines()[0] if str(inner).strip() else ""
    if len(text) > _MAX_MESSAGE:
        text = text[:_MAX_MESSAGE] + "..."
    return f"{type(inner).__name__}: {text}" if text else type(inner).__name__


@contextmanager
def translated(action: str, where: str) -> Iterator[None]:
    """Re-raise driver errors from the body as `StorageError("<action> on <where> failed: ...")`.

    `StorageError` and its subclasses pass through unchanged; so do programming errors
    (`TypeError`, ...) and cancellation, which are not storage failures.
    """
    try:
        yield
    except StorageError:
        raise
    except DRIVER_ERRORS as exc:
        raise StorageError(f"{action} on {where} failed: {describe(exc)}") from exc
