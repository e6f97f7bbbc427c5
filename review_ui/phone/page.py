"""The patient's side: their personal page ``/p/TOKEN`` and what it reads about them.

No account and no password: the token in the link is the key. The JSON routes take it as
``Authorization: Bearer TOKEN`` and show only that patient's own submissions and calendar.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import Blueprint, jsonify, make_response, render_template, request
from sqlalchemy import select
from werkzeug.wrappers import Response

from review_ui import i18n, web
from vot import schema, tokens
from vot.accounts import Patient
from vot.db import as_utc
from vot.review import patients as review_patients
from vot.review import scope as review_scope
from vot.review import verdicts as review_verdicts

bp = Blueprint("patient", __name__)
HISTORY = 60  # submissions listed; two months of daily doses
CHUNK_BYTES = 256 * 1024  # one request's worth on a slow, patchy link
MAX_CLIP_S = 60  # the recorder stops here: a dose fits, and the file stays a few MB
# Reasons a reviewer picks, as catalogue keys; a patient never sees internal error text.
REASON_CODES = {r: r.replace(" ", "_") for r in review_verdicts.REJECT_REASONS}
REASON_CODES[review_verdicts.UNCLEAR_REASON] = "again"
ENDED = (schema.REJECTED, schema.UNCLEAR)


def bearer_patient() -> Patient:
    """The patient whose token is in the ``Authorization: Bearer`` header.

    Raises:
        tokens.TokenError: no token, or one that is unknown or revoked.
    """
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise tokens.UnknownToken("send the patient link's token as Authorization: Bearer TOKEN")
    with web.engine().connect() as conn:
        return tokens.resolve(conn, token.strip())


def token_refused(exc: tokens.TokenError) -> tuple[Response, int]:
    """401 for a missing or unknown token, 403 for a revoked one (JSON, as every API error)."""
    revoked = isinstance(exc, tokens.RevokedToken)
    response = jsonify(error=str(exc), code="link_revoked" if revoked else "link_invalid")
    response.headers["WWW-Authenticate"] = 'Bearer realm="vot"'
    return response, 403 if revoked else 401


bp.register_error_handler(tokens.TokenError, token_refused)


def _language() -> tuple[str, bool]:
    chosen = request.args.get("lang")
    lang = i18n.pick(chosen, request.cookies.get(i18n.COOKIE), request.accept_languages)
    return lang, chosen == lang


@bp.get("/p/<token>")
def page(token: str) -> Response:
    lang, persist = _language()
    t = i18n.messages(lang)
    try:
        with web.engine().connect() as conn:
            tokens.resolve(conn, token)
    except tokens.TokenError as exc:
        revoked = isinstance(exc, tokens.RevokedToken)
        body = render_template("patient_gone.html", t=t, lang=lang, languages=i18n.languages())
        response = make_response(body, 403 if revoked else 404)
    else:
        settings = web.settings()
        body = render_template(
            "patient_page.html",
            t=t,
            lang=lang,
            languages=i18n.languages(),
            token=token,
            chunk_bytes=CHUNK_BYTES,
            max_bytes=settings.max_upload_mb * 1024 * 1024,
            max_seconds=min(MAX_CLIP_S, int(settings.max_duration_s)),
            symptoms=schema.SYMPTOMS,
            severities=schema.SEVERITIES,
        )
        response = make_response(body)
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    if persist:
        response.set_cookie(
            i18n.COOKIE,
            lang,
            max_age=int(timedelta(days=365).total_seconds()),
            path="/p/",
            samesite="Lax",
            httponly=True,
            secure=request.is_secure,
        )
    return response


def _iso(moment: datetime | None) -> str | None:
    return moment_utc.isoformat() if (moment_utc := as_utc(moment)) else None


@bp.get("/api/v1/me/submissions")
def submissions() -> Any:
    """The patient's latest submissions, newest first: id, dose_date, status, reason."""
    patient = bearer_patient()
    s = schema.submissions
    query = (
        select(s.c.id, s.c.dose_date, s.c.status, s.c.reason, s.c.recorded_at, s.c.received_at)
        .where(s.c.patient_id == patient.id)
        .order_by(s.c.received_at.desc(), s.c.id.desc())
        .limit(HISTORY)
    )
    with web.engine().connect() as conn:
        rows = conn.execute(query).all()
    out = []
    for row in rows:
        # While processing, ``reason`` holds retry notes for staff, not words for the patient.
        reason = row.reason if row.status in ENDED else None
        out.append(
            {
                "id": row.id,
                "dose_date": row.dose_date.isoformat(),
                "status": row.status,
                "reason": reason,
                "reason_code": REASON_CODES.get(reason or "", "other") if reason else None,
                "recorded_at": _iso(row.recorded_at),
                "received_at": _iso(row.received_at),
            }
        )
    return jsonify(out)


@bp.get("/api/v1/me/calendar")
def calendar() -> Any:
    """Each day of the patient's regimen with its state, and the adherence figures."""
    patient = bearer_patient()
    # The supervisors' calendar, asked as the patient's own clinic for this patient only: both
    # see the same day states, computed in one place (vot.review.patients and vot.adherence.rules).
    own_clinic = review_scope.Reviewer(0, "patient", "supervisor", patient.clinic_id)
    with web.engine().connect() as conn:
        cal = review_patients.calendar(conn, own_clinic, patient.id)
    figures = cal.adherence
    return jsonify(
        start=figures.regimen_start.isoformat(),
        end=figures.regimen_end.isoformat(),
        today=figures.as_of.isoformat(),
        timezone=patient.timezone,
        expected=figures.expected,
        taken=figures.taken,
        days=[{"date": d.day.isoformat(), "state": d.state} for d in cal.days],
    )
