"""The follow-up list: whom to call today, with one key to record each call."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, g, jsonify, redirect, render_template, request, url_for
from sqlalchemy import select

from review_ui import auth, web
from vot import schema
from vot.review import followup

bp = Blueprint("followup", __name__, url_prefix="/followup")
CALL_TEXT = {
    "reached": "Reached",
    "no_answer": "No answer",
    "wrong_number": "Wrong number",
    "note": "Note",
}


@bp.before_request
def reviewers_only() -> Any:
    return auth.require_roles(*auth.REVIEW_ROLES)


def listed(clinic_id: int | None = None) -> list[followup.FollowUp]:
    """The follow-up list of the signed-in reviewer (for an admin, of ``clinic_id``)."""
    settings = web.settings()
    with web.engine().connect() as conn:
        return followup.follow_ups(
            conn,
            g.user,
            deadline=settings.dose_deadline,
            escalate_after=settings.escalate_after_missed,
            clinic_id=clinic_id,
        )


def _clinic_choice() -> tuple[int | None, list[Any]]:
    """For an admin: the clinic asked for, and every clinic to choose from."""
    c = schema.clinics
    with web.engine().connect() as conn:
        clinics = list(conn.execute(select(c.c.id, c.c.name).order_by(c.c.name)))
    asked = request.args.get("clinic", "")
    chosen = int(asked) if asked.isdigit() else None
    if chosen is None and len(clinics) == 1:
        chosen = clinics[0].id
    return chosen, clinics


@bp.get("")
def index() -> Any:
    clinics: list[Any] = []
    clinic_id = None
    if g.user.clinic_scope is None:  # an admin picks a clinic: a nation is not one list
        clinic_id, clinics = _clinic_choice()
        if clinic_id is None:
            return render_template("followup.html", items=None, clinics=clinics, clinic_id=None)
    items = listed(clinic_id)
    return render_template(
        "followup.html",
        items=items,
        reasons=followup.REASONS,
        call_text=CALL_TEXT,
        escalated=sum(1 for f in items if f.escalated),
        escalate_after=web.settings().escalate_after_missed,
        clinics=clinics,
        clinic_id=clinic_id,
    )


@bp.post("/<int:patient_id>/call")
def call(patient_id: int) -> Any:
    """Record a call (JSON for the keys on the list, a redirect for the buttons)."""
    outcome = request.form.get("outcome", "")
    with web.engine().begin() as conn:
        followup.record_call(conn, g.user, patient_id, outcome, request.form.get("note"))
    if web.wants_json():
        return jsonify(ok=True, patient_id=patient_id, outcome=outcome)
    flash(f"{CALL_TEXT.get(outcome, outcome)} recorded.")
    clinic = request.form.get("clinic", "")
    return redirect(url_for("followup.index", **({"clinic": clinic} if clinic else {})))
