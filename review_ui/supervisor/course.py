"""A patient's course from their calendar page: change the regimen, record a dose watched in
person or confirmed by phone, excuse a day, record the treatment outcome. Each is audited
under the supervisor's name; a refusal shows its reason and changes nothing."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, flash, g, redirect, request, url_for
from sqlalchemy import Connection, select

from review_ui import auth, web
from vot import schema
from vot.adherence import outcomes
from vot.review import scope as review_scope
from vot.treatment import courses, doses
from vot.treatment.regimens import RegimenError

bp = Blueprint("course", __name__, url_prefix="/patients")
REFUSED = (RegimenError, courses.CourseError, doses.DoseError, outcomes.OutcomeError)


@bp.before_request
def reviewers_only() -> Any:
    return auth.require_roles(*auth.REVIEW_ROLES)


def checked(conn: Connection, patient_id: int) -> None:
    """Raises :class:`vot.review.scope.NotFound` (404) outside the user's clinic."""
    p = schema.patients
    query = select(p.c.id).where(p.c.id == patient_id)
    if g.user.clinic_scope is not None:
        query = query.where(p.c.clinic_id == g.user.clinic_scope)
    if conn.execute(query).first() is None:
        raise review_scope.NotFound(f"no patient {patient_id} for this user")


def _day(name: str = "day") -> date:
    try:
        return date.fromisoformat(request.form.get(name, ""))
    except ValueError:
        raise doses.DoseError("give the day as YYYY-MM-DD") from None


def _back(patient_id: int, day: date | None = None) -> Any:
    target = url_for(
        "patients.calendar", patient_id=patient_id, day=day.isoformat() if day else None
    )
    return redirect(target + ("#day-panel" if day else ""))


def _act(patient_id: int, action: Any, done: str, day: date | None = None) -> Any:
    """Run ``action(conn)`` for a patient of the user's clinic; flash what happened."""
    try:
        with web.engine().begin() as conn:
            checked(conn, patient_id)
            action(conn)
    except REFUSED as exc:
        if web.wants_json():
            return web.error(400, str(exc))
        flash(f"Not recorded: {exc}")
        return _back(patient_id, day)
    flash(done)
    return _back(patient_id, day)


@bp.post("/<int:patient_id>/regimen")
def change_regimen(patient_id: int) -> Any:
    regimen = request.form.get("regimen", "")
    try:
        start = _day("from")
    except doses.DoseError as exc:
        flash(f"Not changed: {exc}")
        return _back(patient_id)
    return _act(
        patient_id,
        lambda conn: courses.change_regimen(
            conn, patient_id, regimen, start, g.user.username, request.form.get("reason")
        ),
        f"The regimen is {regimen} from {start}.",
    )


@bp.post("/<int:patient_id>/dose")
def record_dose(patient_id: int) -> Any:
    kind = request.form.get("kind", "")
    day = _day()
    return _act(
        patient_id,
        lambda conn: doses.record_dose(
            conn, patient_id, day, kind, g.user.username, request.form.get("note")
        ),
        f"The dose of {day} is recorded as "
        + ("watched in person." if kind == "in_person" else "confirmed by phone."),
        day,
    )


@bp.post("/<int:patient_id>/dose/<int:dose_id>/withdraw")
def withdraw_dose(patient_id: int, dose_id: int) -> Any:
    day = _day()
    return _act(
        patient_id,
        lambda conn: doses.withdraw_dose(conn, patient_id, dose_id, g.user.username),
        "The recorded dose is withdrawn.",
        day,
    )


@bp.post("/<int:patient_id>/excuse")
def excuse(patient_id: int) -> Any:
    day = _day()
    return _act(
        patient_id,
        lambda conn: doses.excuse(
            conn,
            patient_id,
            day,
            request.form.get("reason", ""),
            g.user.id,
            g.user.username,
            request.form.get("note"),
        ),
        f"{day} is excused.",
        day,
    )


@bp.post("/<int:patient_id>/excuse/withdraw")
def withdraw_excusal(patient_id: int) -> Any:
    day = _day()
    return _act(
        patient_id,
        lambda conn: doses.withdraw_excusal(conn, patient_id, day, g.user.username),
        f"The excusal of {day} is withdrawn.",
        day,
    )


@bp.post("/<int:patient_id>/outcome")
def record_outcome(patient_id: int) -> Any:
    outcome = request.form.get("outcome", "")
    try:
        on = _day("date") if request.form.get("date") else None
    except doses.DoseError as exc:
        flash(f"Not recorded: {exc}")
        return _back(patient_id)
    return _act(
        patient_id,
        lambda conn: outcomes.record(
            conn, patient_id, outcome, g.user.username, on, bool(request.form.get("replace"))
        ),
        f"Outcome recorded: {outcomes.LABELS.get(outcome, outcome)}. The course is closed.",
    )
