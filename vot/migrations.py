"""Schema migrations: create a new database, or upgrade an existing one in place.

A new database gets the current schema from :mod:`vot.schema` and is stamped with the newest
version (the usual "create, then stamp head" approach). An existing database runs, in order and
each in its own transaction, every migration newer than the version it records. A migration is
added here whenever :mod:`vot.schema` changes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, inspect, select, text

from vot import schema

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    upgrade: Callable[[Connection], None]


def _v2_patient_tokens_and_key_moment(conn: Connection) -> None:
    schema.patient_tokens.create(conn, checkfirst=True)
    columns = {c["name"] for c in inspect(conn).get_columns("scores")}
    if "key_moment_s" not in columns:
        conn.execute(text("ALTER TABLE scores ADD COLUMN key_moment_s FLOAT"))


def _v3_review_indexes(conn: Connection) -> None:
    wanted = {
        "submissions": ("ix_submissions_status_updated", "ix_submissions_queue"),
        "scores": ("ix_scores_rank",),
        "reviews": ("ix_reviews_reviewer", "ix_reviews_created", "ix_reviews_previous_status"),
    }
    for table, names in wanted.items():
        for index in schema.metadata.tables[table].indexes:
            if index.name in names:
                index.create(conn, checkfirst=True)


def _v4_uploads(conn: Connection) -> None:
    schema.uploads.create(conn, checkfirst=True)


def _v5_adherence(conn: Connection) -> None:
    columns = {c["name"] for c in inspect(conn).get_columns("regimens")}
    if "weekday_mask" not in columns:
        conn.execute(text("ALTER TABLE regimens ADD COLUMN weekday_mask INTEGER"))
    for table in (schema.excusals, schema.adherence_snapshot, schema.analytics_weekly):
        table.create(conn, checkfirst=True)
    for index in schema.submissions.indexes:
        if index.name in ("ix_submissions_ledger", "ix_submissions_received"):
            index.create(conn, checkfirst=True)


def _v6_retention(conn: Connection) -> None:
    columns = {c["name"] for c in inspect(conn).get_columns("submissions")}
    for name in ("raw_deleted_at", "review_deleted_at", "erased_at"):
        if name not in columns:
            kind = "TIMESTAMP WITH TIME ZONE" if conn.dialect.name == "postgresql" else "DATETIME"
            conn.execute(text(f"ALTER TABLE submissions ADD COLUMN {name} {kind}"))


def _add_columns(conn: Connection, table: str, wanted: dict[str, str]) -> None:
    """``ALTER TABLE ... ADD COLUMN`` for each of ``wanted`` (name: SQL type) not there yet."""
    columns = {c["name"] for c in inspect(conn).get_columns(table)}
    for name, kind in wanted.items():
        if name not in columns:
            conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {name} {kind}"))


def _v7_export_snapshot(conn: Connection) -> None:
    wanted = {
        "pseudonym": "VARCHAR(32)",
        "clinic": "VARCHAR(200)",
        "district": "VARCHAR(200)",
        "record": "TEXT",
    }
    _add_columns(conn, "adherence_snapshot", wanted)
    for index in schema.adherence_snapshot.indexes:
        if index.name == "ix_adherence_snapshot_export":
            index.create(conn, checkfirst=True)


def _v8_treatment_course(conn: Connection) -> None:
    from vot.treatment import days  # the day ledger is filled in from what each day holds

    _add_columns(
        conn,
        "regimens",
        {
            "regimen_id": "VARCHAR(32)",
            "days": "TEXT",
            "outcome": "VARCHAR(32)",
            "outcome_date": "DATE",
            "outcome_by": "VARCHAR(120)",
        },
    )
    for table in (
        schema.regimen_definitions,
        schema.regimen_changes,
        schema.observed_doses,
        schema.followup_calls,
    ):
        table.create(conn, checkfirst=True)
    days.rebuild(conn)


def _v9_patient_contact(conn: Connection) -> None:
    _add_columns(
        conn,
        "patients",
        {"phone": "VARCHAR(20)", "remind_at": "VARCHAR(5)", "language": "VARCHAR(8)"},
    )
    for table in (
        schema.reminders,
        schema.push_subscriptions,
        schema.side_effects,
        schema.messages,
    ):
        table.create(conn, checkfirst=True)


def _v10_fingerprints(conn: Connection) -> None:
    schema.fingerprints.create(conn, checkfirst=True)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "baseline: clinics, users, patients, regimens, submissions, scores, reviews, audit log",
        lambda conn: None,
    ),
    Migration(2, "patient upload tokens; scores.key_moment_s", _v2_patient_tokens_and_key_moment),
    Migration(3, "indexes for the review queue, undo and today's counts", _v3_review_indexes),
    Migration(4, "resumable (tus) uploads in progress", _v4_uploads),
    Migration(
        5, "adherence: excusals, weekday mask, ledger indexes, dashboard snapshot", _v5_adherence
    ),
    Migration(6, "retention: when each video was deleted, and erasures", _v6_retention),
    Migration(7, "adherence snapshot: each patient's export row", _v7_export_snapshot),
    Migration(
        8,
        "treatment course: regimens as data, changes, observed doses, outcomes, follow-up "
        "calls, the day ledger",
        _v8_treatment_course,
    ),
    Migration(
        9,
        "keeping patients on treatment: reminders, push subscriptions, side effects, messages",
        _v9_patient_contact,
    ),
    Migration(10, "replays: each scored video's perceptual fingerprint", _v10_fingerprints),
)
HEAD = MIGRATIONS[-1].version


def current_version(engine: Engine) -> int | None:
    """The version recorded in the database, or None for an empty database."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("schema_migrations"):
            return None
        version = conn.execute(
            select(schema.schema_migrations.c.version).order_by(
                schema.schema_migrations.c.version.desc()
            )
        ).first()
    return int(version[0]) if version else None


def _stamp(conn: Connection, migration: Migration) -> None:
    conn.execute(
        schema.schema_migrations.insert().values(
            version=migration.version,
            description=migration.description,
            applied_at=datetime.now(UTC),
        )
    )


def upgrade(engine: Engine) -> list[int]:
    """Bring the database to :data:`HEAD`; returns the versions applied (empty if none).

    Raises:
        RuntimeError: the database is newer than this code (a downgrade is not supported).
    """
    version = current_version(engine)
    if version is None:
        with engine.begin() as conn:
            schema.metadata.create_all(conn)
            for migration in MIGRATIONS:
                _stamp(conn, migration)
        logger.info("created a new database at schema version %s", HEAD)
        return [m.version for m in MIGRATIONS]
    if version > HEAD:
        raise RuntimeError(
            f"the database is at schema version {version}, newer than this vot ({HEAD}); "
            "upgrade vot instead"
        )
    applied = []
    for migration in MIGRATIONS:
        if migration.version <= version:
            continue
        with engine.begin() as conn:
            migration.upgrade(conn)
            _stamp(conn, migration)
        logger.info("applied migration %s: %s", migration.version, migration.description)
        applied.append(migration.version)
    return applied
