from datetime import UTC, datetime

import pytest
from sqlalchemy import inspect, select, text

from vot import schema
from vot.migrations import HEAD, MIGRATIONS, current_version, upgrade


def test_new_database_is_created_at_head(settings) -> None:
    from vot.db import get_engine

    engine = get_engine(settings)
    assert current_version(engine) is None
    assert upgrade(engine) == list(range(1, HEAD + 1))
    assert current_version(engine) == HEAD
    assert upgrade(engine) == []  # idempotent


def test_version_1_database_is_upgraded_keeping_its_rows(engine) -> None:
    # Turn the fresh database back into what version 1 looked like, with a row in it.
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE patient_tokens"))
        conn.execute(text("ALTER TABLE scores DROP COLUMN key_moment_s"))
        conn.execute(
            schema.schema_migrations.delete().where(schema.schema_migrations.c.version > 1)
        )
        conn.execute(
            schema.clinics.insert().values(
                name="Old clinic", district="D", created_at=datetime.now(UTC)
            )
        )
    assert current_version(engine) == 1
    assert upgrade(engine) == [m.version for m in MIGRATIONS if m.version > 1]
    with engine.connect() as conn:
        assert inspect(conn).has_table("patient_tokens")
        assert "key_moment_s" in {c["name"] for c in inspect(conn).get_columns("scores")}
        assert conn.execute(select(schema.clinics.c.name)).scalars().all() == ["Old clinic"]


def test_newer_database_is_refused(engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            schema.schema_migrations.insert().values(
                version=HEAD + 1, description="future", applied_at=datetime.now(UTC)
            )
        )
    with pytest.raises(RuntimeError, match="newer than this vot"):
        upgrade(engine)
