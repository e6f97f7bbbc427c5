"""Database tables (SQLAlchemy Core), as of the newest migration.

The tables here describe the current schema for queries. Creating and upgrading a database is
the job of :mod:`vot.migrations`, which never calls ``metadata.create_all``.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

# Submission statuses. Processing: received -> transcoding -> scoring; then one of the
# outcomes. ``rejected`` covers both a supervisor's rejection and a file that turned out unusable.
RECEIVED = "received"
TRANSCODING = "transcoding"
SCORING = "scoring"
REVIEW = "review"
AUTO_ACCEPTED = "auto_accepted"
ACCEPTED = "accepted"
REJECTED = "rejected"
UNCLEAR = "unclear"
PROCESSING_STATUSES = (RECEIVED, TRANSCODING, SCORING)
STATUSES = (RECEIVED, TRANSCODING, SCORING, REVIEW, AUTO_ACCEPTED, ACCEPTED, REJECTED, UNCLEAR)
TAKEN_STATUSES = (AUTO_ACCEPTED, ACCEPTED)

ROLES = ("supervisor", "analyst", "admin")

clinics = Table(
    "clinics",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("district", String(200), nullable=False, default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("username", String(100), nullable=False, unique=True),
    Column("password_hash", String(300), nullable=False),
    Column("role", String(20), nullable=False),
    Column("clinic_id", Integer, ForeignKey("clinics.id"), nullable=True),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

patients = Table(
    "patients",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("code", String(64), nullable=False, unique=True),
    Column("clinic_id", Integer, ForeignKey("clinics.id"), nullable=False),
    Column("timezone", String(64), nullable=False, default="UTC"),
    # Stable pseudonym for analysts: never the code or a name.
    Column("pseudonym", String(32), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

patient_tokens = Table(
    "patient_tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("patient_id", Integer, ForeignKey("patients.id"), nullable=False, index=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

regimens = Table(
    "regimens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("patient_id", Integer, ForeignKey("patients.id"), nullable=False, index=True),
    Column("start_date", Date, nullable=False),
    Column("length_days", Integer, nullable=False, default=180),
    Column("doses_per_day", Integer, nullable=False, default=1),
    Column("days_per_week", Integer, nullable=False, default=7),
    Column("end_date", Date, nullable=True),
    Column("end_reason", String(32), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

submissions = Table(
    "submissions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("patient_id", Integer, ForeignKey("patients.id"), nullable=False),
    Column("dose_date", Date, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=True),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("content_sha256", String(64), nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("duration_s", Float, nullable=True),
    Column("original_filename", String(255), nullable=False, default=""),
    Column("raw_key", String(300), nullable=False),
    Column("review_key", String(300), nullable=True),
    Column("poster_key", String(300), nullable=True),
    Column("status", String(20), nullable=False),
    Column("reason", Text, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # The same file sent twice for the same dose is one submission.
    UniqueConstraint("patient_id", "dose_date", "content_sha256", name="uq_submission_dose_file"),
    Index("ix_submissions_status", "status"),
    Index("ix_submissions_patient_date", "patient_id", "dose_date"),
)

scores = Table(
    "scores",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("submission_id", Integer, ForeignKey("submissions.id"), nullable=False),
    Column("model_version", String(64), nullable=False),
    Column("threshold_version", String(32), nullable=False),
    Column("confidence", Float, nullable=False),
    Column("decision", String(20), nullable=False),
    Column("face_visible", Boolean, nullable=False),
    Column("max_faces", Integer, nullable=False),
    Column("key_moment_s", Float, nullable=True),
    Column("events", JSON, nullable=False),
    Column("quality", JSON, nullable=False),
    Column("reasons", JSON, nullable=False),
    Column("processing_s", Float, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # A re-run after a crash must not add a second score for the same model and thresholds.
    UniqueConstraint(
        "submission_id", "model_version", "threshold_version", name="uq_score_version"
    ),
    Index("ix_scores_submission", "submission_id"),
)

reviews = Table(
    "reviews",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("submission_id", Integer, ForeignKey("submissions.id"), nullable=False, index=True),
    Column("reviewer_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("verdict", String(20), nullable=False),
    Column("reason", String(200), nullable=True),
    Column("note", Text, nullable=True),
    Column("previous_status", String(20), nullable=False),
    Column("undone_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("actor", String(120), nullable=False),
    Column("action", String(60), nullable=False),
    Column("target", String(120), nullable=False, default=""),
    Column("detail", JSON, nullable=False),
)

schema_migrations = Table(
    "schema_migrations",
    metadata,
    Column("version", Integer, primary_key=True),
    Column("description", String(200), nullable=False),
    Column("applied_at", DateTime(timezone=True), nullable=False),
)
