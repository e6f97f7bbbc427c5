"""Database engine and small helpers shared by every layer."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, CursorResult, Engine, create_engine, event

from vot import schema
from vot.config import Settings

_engines: dict[tuple[int, str], Engine] = {}


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets the web app read while a worker writes; busy_timeout waits instead of failing
    # with "database is locked" when two processes write at once.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def make_engine(database_url: str) -> Engine:
    """Create an engine for ``database_url`` (SQLite or PostgreSQL)."""
    if database_url.startswith("sqlite"):
        engine = create_engine(database_url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(database_url, pool_pre_ping=True, pool_size=5, max_overflow=5)


def get_engine(settings: Settings) -> Engine:
    """The process-wide engine for ``settings.database_url``, created on first use.

    The data folder is created for an SQLite database so a fresh machine needs nothing by hand.
    """
    # Keyed by process: a forked child (an rq work-horse) must not share its parent's sockets.
    key = (os.getpid(), settings.database_url)
    engine = _engines.get(key)
    if engine is None:
        path = settings.sqlite_path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = make_engine(settings.database_url)
        _engines[key] = engine
    return engine


def dispose_engines() -> None:
    """Close every pooled connection (after a fork, and at the end of tests)."""
    pid = os.getpid()
    for (owner, _url), engine in _engines.items():
        engine.dispose(close=owner == pid)
    _engines.clear()


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes for timezone-aware columns; they were stored as UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def inserted_id(result: CursorResult[Any]) -> int:
    """The primary key of the row an INSERT just made."""
    key = result.inserted_primary_key
    if key is None:
        raise RuntimeError("the INSERT returned no primary key")
    return int(key[0])


def audit(conn: Connection, actor: str, action: str, target: str = "", **detail: Any) -> None:
    """Append one audit-log entry in the caller's transaction."""
    conn.execute(
        schema.audit_log.insert().values(
            at=utcnow(), actor=actor, action=action, target=target, detail=detail
        )
    )
