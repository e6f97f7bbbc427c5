"""Patients of the supervisor's clinic and each one's regimen calendar."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from sqlalchemy import Connection, select

from review_ui import auth, web
from vot import schema
from vot.adherence import outcomes
from vot.adherence.rules import STANDARD
from vot.outreach import messages, side_effects
from vot.retention import erasure
from vot.review import patients as review_patients
from vot.review import scope as review_scope
from vot.storage import StorageError
from vot.treatment import catalog, courses, doses

bp = Blueprint("patients", __name__, url_prefix="/patients")
SYMPTOM_TEXT = {
    "nausea_vomiting": "Nausea or vomiting",
    "rash_itching": "Rash or itching",
    "jaundice": "Yellow eyes or skin",
    "dark_urine": "Dark urine",
    "vision_changes": "Vision changes",
    "numbness_tingling": "Numbness or tingling",
    "joint_pain": "Joint pain",
    "hearing_changes": "Hearing loss or ringing",
}
PAGE_SIZE = 100
STATE_TEXT = {
    "taken": "Taken",
    "excused": "Excused",
    "pending": "Waiting for review",
    "unclear": "Unclear: asked again",
    "rejected": "Rejected",
    "missed": "Missed",
    "not_due": "Not yet due",
    "rest": "No dose due",
}


def symptom_text(report: side_effects.Report) -> str:
    """A report's symptoms in words."""
    return ", ".join(SYMPTOM_TEXT.get(s, s) for s in report.symptoms)


@bp.before_request
def reviewers_only() -> Any:
    return auth.require_roles(*auth.REVIEW_ROLES)


@bp.get("")
def index() -> Any:
    prefix = request.args.get("code", "").strip()
    page = request.args.get("page", "1")
    page = int(page) if page.isdigit() and int(page) > 0 else 1
    with web.engine().connect() as conn:
        rows = review_patients.patients(conn, g.user, prefix, PAGE_SIZE, (page - 1) * PAGE_SIZE)
        ids = [r.patient_id for r in rows]
        unread = messages.unread(conn, ids, "staff")
        urgent = set(side_effects.open_urgent(conn, ids))
    return render_template(
        "patients.html",
        rows=rows,
        code=prefix,
        page=page,
        page_size=PAGE_SIZE,
        unread=unread,
        urgent=urgent,
    )


@bp.get("/<int:patient_id>/link")
def link_card(patient_id: int) -> Any:
    """A printable card with the patient's personal upload link as a QR code.

    When the link was revoked (by ``vot patient revoke-link`` or an erasure), the page says so
    and offers a new one instead.
    """
    import segno

    from vot import tokens
    from vot.db import audit

    with web.engine().begin() as conn:
        code = review_patients.calendar(conn, g.user, patient_id).code  # 404 outside the clinic
        try:
            token = tokens.link_token(conn, web.settings().secret_key, code, actor=g.user.username)
        except tokens.TokenError as exc:
            return render_template(
                "patient_link.html", code=code, patient_id=patient_id, revoked=str(exc)
            )
        audit(conn, g.user.username, "patient.link_printed", f"patient:{patient_id}")
    url = tokens.patient_url(web.settings().public_url, token)
    # Inline SVG is markup, not script: the CSP needs no exception for it.
    qr = segno.make(url, error="m").svg_inline(scale=6, title="personal upload link")
    return render_template(
        "patient_link.html", code=code, patient_id=patient_id, url=url, qr=qr, revoked=None
    )


@bp.post("/<int:patient_id>/link")
def new_link(patient_id: int) -> Any:
    """Revoke the patient's links and issue a new one (audited); then show its card."""
    from vot import tokens

    with web.engine().begin() as conn:
        code = review_patients.calendar(conn, g.user, patient_id).code  # 404 outside the clinic
        tokens.rotate(conn, web.settings().secret_key, code, actor=g.user.username)
    flash(f"A new upload link for {code}: every earlier one no longer works.")
    return redirect(url_for("patients.link_card", patient_id=patient_id))


@bp.get("/<int:patient_id>")
def calendar(patient_id: int) -> Any:
    with web.engine().begin() as conn:
        cal = review_patients.calendar(conn, g.user, patient_id)
        regimens = catalog.catalog(conn)
        history = courses.history(conn, cal.course.id)
        recorded = doses.recorded(conn, patient_id)
        reports = side_effects.reports(conn, patient_id, 20)
        thread = messages.thread(conn, patient_id)
        messages.mark_read(conn, patient_id, "staff")  # the supervisor sees them here
    # Monday-first weeks; the first row is padded so weekdays line up in columns.
    lead = cal.days[0].day.weekday() if cal.days else 0
    weeks, row = [], [None] * lead
    for day in cal.days:
        row.append(day)
        if len(row) == 7:
            weeks.append(row)
            row = []
    if row:
        weeks.append(row + [None] * (7 - len(row)))
    totals = {state: sum(1 for d in cal.days if d.state == state) for state in STATE_TEXT}
    today = cal.adherence.as_of
    return render_template(
        "patient.html",
        cal=cal,
        weeks=weeks,
        totals=totals,
        state_text=STATE_TEXT,
        regimens=regimens,
        history=history,
        panel=_day_panel(cal, recorded),
        outcome_labels=outcomes.LABELS,
        allowed=outcomes.suggested(cal.course, cal.adherence, today, STANDARD),
        excuse_reasons=schema.EXCUSE_REASONS,
        reports=reports,
        urgent=[r for r in reports if r.urgent and r.acknowledged_at is None],
        thread=thread,
        symptoms=symptom_text,
        max_message=messages.MAX_LENGTH,
    )


def _day_panel(cal: Any, recorded: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The day chosen on the calendar (``?day=``): its state, videos and what was recorded."""
    try:
        chosen = date.fromisoformat(request.args.get("day", ""))
    except ValueError:
        return None
    day = next((d for d in cal.days if d.day == chosen), None)
    if day is None:
        return None
    mine = [r for r in recorded if r["dose_date"] == chosen]
    return {"day": day, "doses": mine, "future": chosen > cal.adherence.as_of}


def _code(conn: Connection, patient_id: int) -> str:
    """The patient's code when the user may act for them (admin, or their clinic's supervisor).

    Raises:
        vot.review.scope.NotFound: no such patient for this user (404).
    """
    p = schema.patients
    query = select(p.c.code).where(p.c.id == patient_id)
    if g.user.clinic_scope is not None:
        query = query.where(p.c.clinic_id == g.user.clinic_scope)
    code = conn.execute(query).scalar_one_or_none()
    if code is None:
        raise review_scope.NotFound(f"no patient {patient_id} for this user")
    return str(code)


def _erase_page(patient_id: int, error: str | None = None, reason: str = "") -> Any:
    with web.engine().connect() as conn:
        code = _code(conn, patient_id)
        preview = erasure.erasure_preview(conn, patient_id)
    page = render_template(
        "patient_erase.html",
        patient_id=patient_id,
        code=code,
        preview=preview,
        error=error,
        reason=reason,
        max_reason=erasure.MAX_REASON,
    )
    return (page, 400) if error else page


@bp.get("/<int:patient_id>/erase")
def erase_confirm(patient_id: int) -> Any:
    """Ask for the reason and the patient's code before erasing their videos."""
    return _erase_page(patient_id)


@bp.post("/<int:patient_id>/erase")
def erase(patient_id: int) -> Any:
    """Erase the patient's videos (the decisions stay); audited under the user's name."""
    reason = request.form.get("reason", "")
    with web.engine().connect() as conn:
        code = _code(conn, patient_id)
    if request.form.get("confirm_code", "").strip() != code:
        return _erase_page(patient_id, f"type the patient's code {code} to confirm", reason)
    try:
        report = erasure.erase_patient(
            web.engine(),
            web.storage(),
            web.settings(),
            code,
            actor=g.user.username,
            reason=reason,
        )
    except (erasure.ErasureError, StorageError) as exc:
        return _erase_page(patient_id, str(exc), reason)
    flash(
        f"Erased the videos of {code}: {len(report.submissions)} dose video(s), "
        f"{report.objects} stored file(s), {report.uploads} upload(s) in progress. "
        + (
            "The upload link was revoked; print a new one if the patient goes on recording. "
            if report.links_revoked
            else ""
        )
        + "Decisions and the audit log remain."
    )
    return redirect(url_for("patients.calendar", patient_id=patient_id))
