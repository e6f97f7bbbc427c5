"""Database tables (SQLAlchemy Core), as of the newest migration.

The tables here describe the current schema for queries. Creating and upgrading a database is
the job of :mod:`vot.migrations`, which never calls ``metadata.create_all``.

The tables live in :mod:`vot.schema.base` (the pipeline), :mod:`vot.schema.course` (the
treatment course) and :mod:`vot.schema.outreach` (keeping patients on treatment); all of them
are read from here, as ``schema.submissions``.
"""

from __future__ import annotations

from vot.schema.base import (
    ACCEPTED,
    AUTO_ACCEPTED,
    PROCESSING_STATUSES,
    RECEIVED,
    REJECTED,
    REVIEW,
    ROLES,
    SCORING,
    STATUSES,
    TAKEN_STATUSES,
    TRANSCODING,
    UNCLEAR,
    audit_log,
    clinics,
    fingerprints,
    metadata,
    patient_tokens,
    patients,
    reviews,
    schema_migrations,
    scores,
    submissions,
    uploads,
    users,
)
from vot.schema.course import (
    CALL_OUTCOMES,
    DOSE_KINDS,
    EXCUSE_REASONS,
    adherence_snapshot,
    analytics_weekly,
    excusals,
    followup_calls,
    observed_doses,
    regimen_changes,
    regimen_definitions,
    regimens,
)
from vot.schema.outreach import (
    REMINDER_CHANNELS,
    SEVERITIES,
    SYMPTOMS,
    messages,
    push_subscriptions,
    reminders,
    side_effects,
)

__all__ = [
    "metadata",
    "RECEIVED",
    "TRANSCODING",
    "SCORING",
    "REVIEW",
    "AUTO_ACCEPTED",
    "ACCEPTED",
    "REJECTED",
    "UNCLEAR",
    "PROCESSING_STATUSES",
    "STATUSES",
    "TAKEN_STATUSES",
    "ROLES",
    "clinics",
    "users",
    "patients",
    "patient_tokens",
    "submissions",
    "scores",
    "reviews",
    "uploads",
    "audit_log",
    "fingerprints",
    "schema_migrations",
    "regimens",
    "regimen_definitions",
    "regimen_changes",
    "DOSE_KINDS",
    "observed_doses",
    "CALL_OUTCOMES",
    "followup_calls",
    "EXCUSE_REASONS",
    "excusals",
    "adherence_snapshot",
    "analytics_weekly",
    "REMINDER_CHANNELS",
    "reminders",
    "push_subscriptions",
    "SYMPTOMS",
    "SEVERITIES",
    "side_effects",
    "messages",
]
