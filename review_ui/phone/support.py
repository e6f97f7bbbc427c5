"""The patient's side effects and messages: ``/api/v1/me/side-effects`` and
``/api/v1/me/messages``, authenticated by the link's token (``Authorization: Bearer``).

Every refusal is a 4xx JSON ``{"error": ...}`` and changes nothing.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request
from werkzeug.wrappers import Response

from review_ui import web
from review_ui.phone.page import REASON_CODES, bearer_patient, token_refused
from vot import tokens
from vot.outreach import messages, side_effects

bp = Blueprint("support", __name__, url_prefix="/api/v1/me")
bp.register_error_handler(tokens.TokenError, token_refused)


@bp.errorhandler(side_effects.SideEffectError)
@bp.errorhandler(messages.MessageError)
def refused(exc: ValueError) -> tuple[Response, int]:
    return jsonify(error=str(exc)), 400


def _body() -> dict[str, Any]:
    """The request's JSON object (a 400 for anything else)."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise messages.MessageError("send a JSON object")
    return data


def _report_json(report: side_effects.Report) -> dict[str, Any]:
    return {
        "id": report.id,
        "symptoms": list(report.symptoms),
        "severity": report.severity,
        "note": report.note,
        "urgent": report.urgent,
        "reported_at": report.reported_at.isoformat(),
        "acknowledged": report.acknowledged_at is not None,
    }


@bp.post("/side-effects")
def report_side_effects() -> Any:
    patient = bearer_patient()
    data = _body()
    submission = data.get("submission_id")
    if submission is not None and (isinstance(submission, bool) or not isinstance(submission, int)):
        raise side_effects.SideEffectError("submission_id is a whole number")
    with web.engine().begin() as conn:
        got = side_effects.report(
            conn,
            patient.id,
            data.get("symptoms"),
            data.get("severity"),
            data.get("note"),
            submission,
            data.get("key"),
        )
    return jsonify(_report_json(got)), 201


@bp.get("/side-effects")
def list_side_effects() -> Any:
    patient = bearer_patient()
    with web.engine().connect() as conn:
        found = side_effects.reports(conn, patient.id)
    return jsonify([_report_json(r) for r in found])


def _message_json(message: messages.Message) -> dict[str, Any]:
    # The patient sees who wrote as "your clinic", never a staff member's user name.
    return {
        "id": message.id,
        "from": message.sender,
        "text": message.body,
        "kind": message.kind,
        "dose_date": message.dose_date.isoformat() if message.dose_date else None,
        "sent_at": message.created_at.isoformat(),
        "read": message.read_at is not None,
        # A record-again message's reason, as the page's catalogue names it.
        "reason_code": REASON_CODES.get(message.body, "other")
        if message.kind == "record_again"
        else None,
    }


@bp.get("/messages")
def thread() -> Any:
    """The thread, oldest first; the clinic's messages are read once listed here."""
    patient = bearer_patient()
    with web.engine().begin() as conn:
        found = messages.thread(conn, patient.id)
        messages.mark_read(conn, patient.id, "patient")
    return jsonify(messages=[_message_json(m) for m in found])


@bp.get("/messages/unread")
def unread() -> Any:
    patient = bearer_patient()
    with web.engine().connect() as conn:
        count = messages.unread(conn, [patient.id], "patient").get(patient.id, 0)
    return jsonify(unread=count)


@bp.post("/messages")
def write() -> Any:
    patient = bearer_patient()
    data = _body()
    with web.engine().begin() as conn:
        message_id = messages.send(conn, patient.id, "patient", data.get("text"))
    return jsonify(id=message_id), 201
