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
    # Bit 0 = Monday ... bit 6 = Sunday: the weekdays a dose is due. NULL: the usual days for
    # days_per_week (vot.adherence.rules.DEFAULT_MASKS). Added by migration 5.
    Column("weekday_mask", Integer, nullable=True),
    # Migration 8. A row is a treatment course. regimen_id names its first regimen (a built-in
    # or one in regimen_definitions; NULL: a course from before regimens were data, which
    # length_days and the weekday mask describe). days is the day ledger: one character per day
    # from start_date, kept by vot.treatment.days in the same transaction as every change to
    # what a day holds. outcome is the WHO treatment outcome, recorded when the course ends.
    Column("regimen_id", String(32), nullable=True),
    Column("days", Text, nullable=True),
    Column("outcome", String(32), nullable=True),
    Column("outcome_date", Date, nullable=True),
    Column("outcome_by", String(120), nullable=True),
)

# Migration 8: a programme's own regimens (the built-in ones are in vot/treatment/).
regimen_definitions = Table(
    "regimen_definitions",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("definition", Text, nullable=False),  # the JSON of vot.treatment.regimens.parse
    Column("created_by", String(120), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Migration 8: a change of regimen mid-course, from start_date on. A later change made to an
# earlier date supersedes the changes after it (superseded_at); nothing is deleted.
regimen_changes = Table(
    "regimen_changes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("course_id", Integer, ForeignKey("regimens.id"), nullable=False, index=True),
    Column("regimen_id", String(32), nullable=False),
    Column("start_date", Date, nullable=False),
    Column("reason", Text, nullable=True),
    Column("created_by", String(120), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("superseded_at", DateTime(timezone=True), nullable=True),
)

# Migration 8: a dose watched in person, or confirmed by phone when a video could not be used.
# Counts as taken. Withdrawing one sets revoked_at: the history stays.
DOSE_KINDS = ("in_person", "phone")

observed_doses = Table(
    "observed_doses",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("patient_id", Integer, ForeignKey("patients.id"), nullable=False),
    Column("dose_date", Date, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("note", Text, nullable=True),
    Column("recorded_by", String(120), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Index("ix_observed_doses_patient_date", "patient_id", "dose_date"),
)

# Migration 8: a call to a patient from the follow-up list, and how it went.
CALL_OUTCOMES = ("reached", "no_answer", "wrong_number", "note")

followup_calls = Table(
    "followup_calls",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("patient_id", Integer, ForeignKey("patients.id"), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("note", Text, nullable=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_followup_calls_patient", "patient_id", "id"),
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

# A dose day a supervisor excused, and why (migration 5). Withdrawing one sets revoked_at: the
# history stays. Excused days are neither taken nor missed (see docs/adherence.md).
EXCUSE_REASONS = ("in_hospital", "drug_stock_out", "other")

excusals = Table(
    "excusals",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("patient_id", Integer, ForeignKey("patients.id"), nullable=False),
    Column("dose_date", Date, nullable=False),
    Column("reason", String(32), nullable=False),
    Column("note", Text, nullable=True),
    Column("recorded_by", Integer, ForeignKey("users.id"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Index("ix_excusals_patient_date", "patient_id", "dose_date"),
)

# Migration 5: the analyst dashboard reads these, refreshed from the ledger by
# vot.adherence.analytics (one row per patient's latest regimen; weekly figures per scope: all, a
# district, a clinic).
adherence_snapshot = Table(
    "adherence_snapshot",
    metadata,
    Column("patient_id", Integer, ForeignKey("patients.id"), primary_key=True),
    Column("clinic_id", Integer, ForeignKey("clinics.id"), nullable=False, index=True),
    Column("regimen_start", Date, nullable=False),
    Column("as_of", Date, nullable=False),
    Column("expected", Integer, nullable=False),
    Column("taken", Integer, nullable=False),
    Column("excused", Integer, nullable=False),
    Column("missed", Integer, nullable=False),
    Column("longest_missed_run", Integer, nullable=False),
    Column("flag_below", Boolean, nullable=False),
    Column("flag_ltfu", Boolean, nullable=False),
    Column("completed", Boolean, nullable=False),
    Column("computed_at", DateTime(timezone=True), nullable=False),
    # Migration 7: the patient's whole export row (vot.adherence.export.record, as JSON) and what
    # the export filters and sorts it by, so the export can be served from the snapshot. NULL in
    # rows refreshed before version 7.
    Column("pseudonym", String(32), nullable=True),
    Column("clinic", String(200), nullable=True),
    Column("district", String(200), nullable=True),
    Column("record", Text, nullable=True),
    Index("ix_adherence_snapshot_export", "district", "clinic", "pseudonym"),
)

analytics_weekly = Table(
    "analytics_weekly",
    metadata,
    Column("scope", String(10), primary_key=True),  # all, district, clinic
    Column("scope_key", String(200), primary_key=True),  # "", the district or the clinic name
    Column("week_start", Date, primary_key=True),  # a Monday
    Column("expected", Integer, nullable=False),
    Column("taken", Integer, nullable=False),
    Column("videos", Integer, nullable=False),
    Column("auto_accepted", Integer, nullable=False),
    Column("decided", Integer, nullable=False),
    Column("median_decision_s", Float, nullable=True),
    Column("compared", Integer, nullable=False),
    Column("agreed", Integer, nullable=False),
    Column("computed_at", DateTime(timezone=True), nullable=False),
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


# Migration 9: a reminder of a dose due and still missing, one row per patient, day, round (1:
# at the reminder time; 2: the second one) and channel (push, sms). Sent once; a failed send is
# retried with back-off (next_attempt_at) and its error kept.
REMINDER_CHANNELS = ("push", "sms")

reminders = Table(
    "reminders",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("patient_id", Integer, ForeignKey("patients.id"), nullable=False),
    Column("dose_date", Date, nullable=False),
    Column("round", Integer, nullable=False),
    Column("channel", String(8), nullable=False),
    Column("status", String(12), nullable=False),  # sending, sent, retrying, failed, skipped
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", DateTime(timezone=True), nullable=True),
    Column("error", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("patient_id", "dose_date", "round", "channel", name="uq_reminder"),
    Index("ix_reminders_due", "status", "next_attempt_at"),
    Index("ix_reminders_day", "dose_date", "patient_id"),
)

# Migration 9: a browser's Web Push subscription for a patient's page (RFC 8030/8291/8292).
push_subscriptions = Table(
    "push_subscriptions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("patient_id", Integer, ForeignKey("patients.id"), nullable=False, index=True),
    Column("endpoint", Text, nullable=False),
    Column("p256dh", String(200), nullable=False),
    Column("auth", String(100), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

# Migration 9: side effects the patient reported on their page, with a severity. A severe report,
# yellow eyes or skin, or vision changes stay marked until a supervisor acknowledges them.
SYMPTOMS = (
    "nausea_vomiting",
    "rash_itching",
    "jaundice",
    "dark_urine",
    "vision_changes",
    "numbness_tingling",
    "joint_pain",
    "hearing_changes",
)
SEVERITIES = ("mild", "moderate", "severe")

side_effects = Table(
    "side_effects",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("patient_id", Integer, ForeignKey("patients.id"), nullable=False),
    Column("symptoms", JSON, nullable=False),
    Column("severity", String(10), nullable=False),
    Column("note", Text, nullable=True),
    Column("submission_id", Integer, ForeignKey("submissions.id"), nullable=True),
    Column("urgent", Boolean, nullable=False, default=False),
    Column("reported_at", DateTime(timezone=True), nullable=False),
    Column("acknowledged_at", DateTime(timezone=True), nullable=True),
    Column("acknowledged_by", String(120), nullable=True),
    # The phone's own id for the report: sent again after a dropped answer, it is the same one.
    Column("client_key", String(64), nullable=True),
    UniqueConstraint("patient_id", "client_key", name="uq_side_effects_client_key"),
    Index("ix_side_effects_patient", "patient_id", "id"),
    Index("ix_side_effects_open", "urgent", "acknowledged_at"),
)

# Migration 9: messages between a patient and their clinic, plain text. kind "record_again"
# is the clinic's message after a rejected or unclear video, with the day to record again.
messages = Table(
    "messages",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("patient_id", Integer, ForeignKey("patients.id"), nullable=False),
    Column("sender", String(8), nullable=False),  # patient, staff
    Column("user_id", Integer, ForeignKey("users.id"), nullable=True),
    Column("body", Text, nullable=False),
    Column("kind", String(16), nullable=False, default="text"),
    Column("dose_date", Date, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("read_at", DateTime(timezone=True), nullable=True),
    Index("ix_messages_patient", "patient_id", "id"),
)
