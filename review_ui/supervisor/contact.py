"""Reminders on a patient's calendar page: how to reach them (phone number, reminder time,
language), and every reminder sent, waiting or failed. Changes are audited under the
supervisor's name; bad input changes nothing (400 ``{"error"}`` for a script)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, g, redirect, request, url_for

from review_ui import auth, web
from review_ui.supervisor import course
from vot.outreach import contact, push, reminders

bp = Blueprint("contact", __name__, url_prefix="/patients")
CHANNELS = {"push": "phone page (push)", "sms": "SMS"}
ROUNDS = {1: "first", 2: "second"}


@bp.before_request
def reviewers_only() -> Any:
    return auth.require_roles(*auth.REVIEW_ROLES)


@bp.post("/<int:patient_id>/contact")
def save(patient_id: int) -> Any:
    """Set the phone number, reminder time and language ("" clears the number or time)."""
    fields = {name: request.form.get(name, "").strip() for name in ("phone", "remind_at")}
    language = request.form.get("language", "").strip()
    try:
        with web.engine().begin() as conn:
            course.checked(conn, patient_id)
            contact.update(conn, patient_id, g.user.username, language=language, **fields)
    except contact.ContactError as exc:
        if web.wants_json():
            return web.error(400, str(exc))
        flash(f"Reminders not changed: {exc}")
        return _back(patient_id)
    flash("Reminder settings saved.")
    return _back(patient_id)


def _back(patient_id: int) -> Any:
    return redirect(url_for("patients.calendar", patient_id=patient_id) + "#reminders")


@bp.app_context_processor
def for_templates() -> dict[str, Any]:
    """``patient_reminders(id)``: what the calendar page shows under "Reminders"."""

    def patient_reminders(patient_id: int) -> dict[str, Any]:
        with web.engine().connect() as conn:
            found = contact.get(conn, patient_id)
            sent = reminders.history(conn, patient_id, limit=1000)
            phones = len(push.live(conn, patient_id))
        return {
            "contact": found,
            "sent": sent,
            "phones": phones,
            "sms_on": bool(web.settings().sms_webhook_url),
            "second_after_min": web.settings().second_reminder_after_min,
            "languages": contact.LANGUAGES,
            "channels": CHANNELS,
            "rounds": ROUNDS,
        }

    return {"patient_reminders": patient_reminders}
