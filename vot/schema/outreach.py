"""Keeping patients on treatment: reminders, push subscriptions, side effects, messages."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from vot.schema.base import metadata

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
