"""The regimens a programme can use: the built-in ones and its own, added without code.

A programme's regimens are kept in the database (``regimen_definitions``), so every machine of a
deployment sees the same ones. A definition never changes once added: patients' figures are
counted from it. To change a regimen, add another under a new id.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, select

from vot import schema
from vot.db import audit, utcnow
from vot.treatment.regimens import RegimenDef, RegimenError, builtins, parse

d = schema.regimen_definitions


def catalog(conn: Connection) -> dict[str, RegimenDef]:
    """Every regimen by id: the built-in ones, then the programme's own."""
    found = dict(builtins())
    for rid, text in conn.execute(select(d.c.id, d.c.definition).order_by(d.c.id)):
        found[rid] = parse(json.loads(text))
    return found


def get(conn: Connection, regimen_id: str) -> RegimenDef:
    """The regimen ``regimen_id``.

    Raises:
        RegimenError: there is no such regimen (the message lists the known ones).
    """
    regimens = catalog(conn)
    if regimen_id not in regimens:
        raise RegimenError(
            f"no regimen {regimen_id!r}; known: {', '.join(regimens)} (`vot regimen list`)"
        )
    return regimens[regimen_id]


def add(conn: Connection, data: Any, actor: str) -> RegimenDef:
    """Add a programme's regimen from its JSON form; returns it.

    Raises:
        RegimenError: the definition is malformed, or its id is taken (built-in or added).
    """
    regimen = parse(data)
    if regimen.id in catalog(conn):
        raise RegimenError(
            f"a regimen {regimen.id!r} exists already; definitions never change once added, "
            "so give the new one another id"
        )
    conn.execute(
        d.insert().values(
            id=regimen.id,
            definition=json.dumps(regimen.to_json()),
            created_by=actor,
            created_at=utcnow(),
        )
    )
    audit(conn, actor, "regimen.add", f"regimen:{regimen.id}", name=regimen.name)
    return regimen


__all__ = ["RegimenError", "add", "catalog", "get"]
