"""The treatment course's tables: regimens and their changes, doses recorded by hand, excusals,
follow-up calls, the analysts' snapshot."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from vot.schema.base import metadata

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
