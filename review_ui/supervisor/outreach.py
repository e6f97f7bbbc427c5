"""A patient's side effects and messages from the supervisor's side: acknowledge urgent
reports, write to the patient. The thread and the reports show on the patient's page."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, g, redirect, request, url_for
from sqlalchemy import func, select

from review_ui import auth, web
from review_ui.supervisor.course import checked
from vot import schema
from vot.outreach import messages, side_effects
from vot.review.scope import in_clinic

bp = Blueprint("outreach", __name__, url_prefix="/patients")


@bp.before_request
def reviewers_only() -> Any:
    return auth.require_roles(*auth.REVIEW_ROLES)


@bp.app_context_processor
def unread_total() -> dict[str, Any]:
    """How many patients' messages wait to be read in the reviewer's clinic (for the nav)."""
    user = g.get("user")
    if user is None or user.role not in auth.REVIEW_ROLES or request.blueprint in ("support",):
        return {"unread_total": 0}
    m, p = schema.messages, schema.patients
    query = in_clinic(
        select(func.count())
        .select_from(m.join(p, p.c.id == m.c.patient_id))
        .where(m.c.sender == "patient", m.c.read_at.is_(None)),
        user,
    )
    with web.engine().connect() as conn:
        return {"unread_total": int(conn.execute(query).scalar_one())}


def _back(patient_id: int, anchor: str) -> Any:
    return redirect(url_for("patients.calendar", patient_id=patient_id) + anchor)


@bp.post("/<int:patient_id>/side-effects/acknowledge")
def acknowledge(patient_id: int) -> Any:
    with web.engine().begin() as conn:
        checked(conn, patient_id)
        done = side_effects.acknowledge(conn, patient_id, g.user.username)
    flash(f"{done} report(s) of side effects acknowledged.")
    return _back(patient_id, "#side-effects")


@bp.post("/<int:patient_id>/messages")
def write(patient_id: int) -> Any:
    try:
        with web.engine().begin() as conn:
            checked(conn, patient_id)
            messages.send(conn, patient_id, "staff", request.form.get("text", ""), g.user.id)
    except messages.MessageError as exc:
        if web.wants_json():
            return web.error(400, str(exc))
        flash(f"Not sent: {exc}")
        return _back(patient_id, "#messages")
    if web.wants_json():
        return {"ok": True}
    flash("Message sent.")
    return _back(patient_id, "#messages")
