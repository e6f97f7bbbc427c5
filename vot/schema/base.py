"""The pipeline's tables: clinics, people, submissions and their scores and reviews, uploads, the
audit log; the submission statuses."""

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
    LargeBinary,
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
    # Migration 9: how to reach the patient. The phone number (E.164) is for reminders by SMS
    # only: never shown to analysts, deleted by an erasure. remind_at is the time of day, in the
    # patient's time zone, of the dose reminder; language the one their page speaks.
    Column("phone", String(20), nullable=True),
    Column("remind_at", String(5), nullable=True),
    Column("language", String(8), nullable=True),
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
    # Migration 6, retention (vot.retention.policy): when the raw upload, and the review copy with
    # its poster and stills, were deleted; erased_at when that was at the patient's request. The
    # keys stay, so a deletion that was cut short can be finished; the row and its decision stay.
    Column("raw_deleted_at", DateTime(timezone=True), nullable=True),
    Column("review_deleted_at", DateTime(timezone=True), nullable=True),
    Column("erased_at", DateTime(timezone=True), nullable=True),
    # The same file sent twice for the same dose is one submission.
    UniqueConstraint("patient_id", "dose_date", "content_sha256", name="uq_submission_dose_file"),
    Index("ix_submissions_status", "status"),
    Index("ix_submissions_patient_date", "patient_id", "dose_date"),
    # Migration 5: the adherence ledger reads (patient, day, status) from the index alone;
    # workload figures read videos by arrival time.
    Index("ix_submissions_ledger", "patient_id", "dose_date", "status"),
    Index("ix_submissions_received", "received_at"),
    # "Auto-accepted today" and the auto-accepted tab read one status by time.
    Index("ix_submissions_status_updated", "status", "updated_at"),
    # The review queue ranks every waiting video of a clinic from this index alone.
    Index("ix_submissions_queue", "status", "patient_id"),
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
    # The newest score's confidence per submission without reading the table (queue ranking).
    Index("ix_scores_rank", "submission_id", "id", "confidence"),
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
    # Undo finds a reviewer's latest decision; "done today" counts decisions by time.
    Index("ix_reviews_reviewer", "reviewer_id", "id"),
    Index("ix_reviews_created", "created_at"),
    # The scorer-vs-supervisor agreement reads only the spot checks of auto-accepts.
    Index("ix_reviews_previous_status", "previous_status"),
)

# A resumable (tus) upload in progress. Its bytes live under data_dir/uploads until complete;
# then they are ingested (submission_id set) or refused (error set) and the bytes removed.
uploads = Table(
    "uploads",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("patient_id", Integer, ForeignKey("patients.id"), nullable=False, index=True),
    Column("length_bytes", BigInteger, nullable=False),
    Column("offset_bytes", BigInteger, nullable=False, default=0),
    Column("filename", String(255), nullable=False, default=""),
    Column("recorded_at", DateTime(timezone=True), nullable=True),
    Column("submission_id", Integer, ForeignKey("submissions.id"), nullable=True),
    Column("error", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # The expiry sweep reads uploads by last activity.
    Index("ix_uploads_updated", "updated_at"),
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

# Migration 10: each scored video's perceptual fingerprint (vot.triage.replay), packed 32 bytes a
# hash, to find a recording sent again; ``same_as`` is the earlier video it was found to repeat.
fingerprints = Table(
    "fingerprints",
    metadata,
    Column("submission_id", Integer, ForeignKey("submissions.id"), primary_key=True),
    Column("patient_id", Integer, ForeignKey("patients.id"), nullable=False),
    Column("clinic_id", Integer, ForeignKey("clinics.id"), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("hashes", LargeBinary, nullable=False),
    Column("same_as", Integer, ForeignKey("submissions.id"), nullable=True),
    Index("ix_fingerprints_patient", "patient_id", "submission_id"),
    Index("ix_fingerprints_clinic", "clinic_id", "received_at"),
)
