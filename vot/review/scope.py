"""Who a reviewer is, what they may see, and the queries every review module builds on.

Review functions are plain functions over a connection; the caller owns the transaction
(``engine.begin()``) so a verdict, its review row and its audit entry commit together. Every
function takes the :class:`Reviewer` whose clinic bounds what it sees: a supervisor sees their
own clinic's patients, an admin every clinic, an analyst nothing here (``PermissionError``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import String, cast, func, select
from sqlalchemy.sql import ColumnElement, Select

from vot import schema

s, sc, p = schema.submissions, schema.scores, schema.patients
SelectT = TypeVar("SelectT", bound=Select)


class ReviewError(ValueError):
    """A decision that cannot be recorded; the message says why."""


class Conflict(ReviewError):
    """The video changed since it was shown (someone else decided it first)."""


class NotFound(LookupError):
    """No such submission or patient among those the reviewer may see."""


@dataclass(frozen=True)
class Reviewer:
    id: int
    username: str
    role: str
    clinic_id: int | None

    @property
    def clinic_scope(self) -> int | None:
        """The clinic this reviewer is limited to; None for an admin (every clinic).

        Raises:
            PermissionError: the role does not review videos (an analyst).
        """
        if self.role == "admin":
            return None
        if self.role == "supervisor" and self.clinic_id is not None:
            return self.clinic_id
        raise PermissionError(f"a {self.role} does not review videos")


def in_clinic(query: SelectT, reviewer: Reviewer) -> SelectT:
    """``query`` limited to the reviewer's clinic; it must join ``patients``."""
    clinic = reviewer.clinic_scope
    return query if clinic is None else query.where(p.c.clinic_id == clinic)


def newest(column: str) -> Any:
    """A column of the submission's newest score, as a correlated subquery.

    A submission may be re-scored by a newer model: the newest score is the one that counts.
    Ranking reads confidence from the covering index ``ix_scores_rank`` without the table.
    """
    newer = schema.scores.alias("sc_newest")
    return (
        select(newer.c[column])
        .where(newer.c.submission_id == s.c.id)
        .order_by(newer.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )


def _latest_score() -> ColumnElement[bool]:
    newer = schema.scores.alias("sc_newest")
    latest = select(func.max(newer.c.id)).where(newer.c.submission_id == s.c.id)
    return sc.c.id == latest.scalar_subquery()


def scoped(columns: Sequence[Any], reviewer: Reviewer, *where: Any) -> Select[Any]:
    """``SELECT columns`` over submission, patient and newest score, in the reviewer's clinic."""
    query = (
        select(*columns)
        .select_from(s.join(p, p.c.id == s.c.patient_id).outerjoin(sc, _latest_score()))
        .where(*where)
    )
    return in_clinic(query, reviewer)


def ranked(
    columns: Sequence[Any], reviewer: Reviewer, *where: Any, by_reason: bool = False
) -> Select[Any]:
    """``SELECT columns`` over submissions alone, in the reviewer's clinic.

    The queue ranks up to every waiting video: this narrow form reads only the indexes
    ``ix_submissions_queue`` and ``ix_scores_rank``; details are fetched for one page after.
    ``by_reason``: ``where`` filters on the scorer's reasons (see below).
    """
    clinic = reviewer.clinic_scope
    if clinic is None:
        return select(*columns).select_from(s).where(*where)
    if not by_reason:
        return (
            select(*columns)
            .select_from(s.join(p, p.c.id == s.c.patient_id))
            .where(p.c.clinic_id == clinic, *where)
        )
    # Under a reason filter PostgreSQL expects one row, joins by looping over every patient
    # and takes a second; a clinic lookup per row costs the same whatever it expects.
    owner = select(p.c.clinic_id).where(p.c.id == s.c.patient_id).scalar_subquery()
    return select(*columns).select_from(s).where(owner == clinic, *where)


def reasons_contain(code: str) -> ColumnElement[bool]:
    # JSON lists are stored as text on SQLite and json on PostgreSQL; both cast to '["a", "b"]'.
    return cast(newest("reasons"), String).contains(f'"{code}"', autoescape=True)


def aware(value: datetime) -> datetime:
    """A NOT NULL timestamp as an aware UTC datetime (SQLite gives naive ones back)."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)
