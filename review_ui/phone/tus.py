"""The tus 1.0 upload endpoint for patients' videos: core protocol, creation and termination.

Callers authenticate with ``Authorization: Bearer TOKEN`` (the token of the patient's link),
never with the session cookie, which is why these routes skip the session's CSRF check. Once
the last byte arrives the video is ingested and queued; the reply carries the submission id.
"""

from __future__ import annotations

import logging
import re
import time

from flask import Blueprint, current_app, g, jsonify, request, url_for
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.wrappers import Response

from review_ui import web
from review_ui.phone import page as patient
from vot import tokens
from vot.intake import expiry as upload_expiry
from vot.intake import finish as upload_finish
from vot.intake import uploads
from vot.intake import writes as upload_writes
from vot.intake.ingest import Ingested
from vot.storage import StorageError

logger = logging.getLogger(__name__)
bp = Blueprint("tus", __name__, url_prefix="/api/v1/uploads")
bp.register_error_handler(tokens.TokenError, patient.token_refused)

TUS_VERSION = "1.0.0"
EXTENSIONS = "creation,termination"
EXPIRE_EVERY_S = 600.0
_NUMBER = re.compile(r"[0-9]{1,15}")
STATUS = {
    uploads.BadMetadata: 400,
    uploads.UploadNotFound: 404,
    uploads.OffsetMismatch: 409,
    uploads.TooLarge: 413,
    uploads.Refused: 422,
    uploads.Busy: 423,
    uploads.TooMany: 429,
}


def _error(status: int, message: str, code: str, **headers: str) -> Response:
    response = jsonify(error=message, code=code)
    response.status_code = status
    response.headers.update(headers)
    return response


@bp.errorhandler(uploads.UploadError)
def upload_refused(exc: uploads.UploadError) -> Response:
    extra = {"Upload-Offset": str(exc.offset)} if isinstance(exc, uploads.OffsetMismatch) else {}
    return _error(STATUS.get(type(exc), 400), str(exc), exc.code, **extra)


@bp.errorhandler(StorageError)
def store_down(exc: StorageError) -> Response:
    logger.error("could not store an upload: %s", exc)
    return _error(503, "the server could not store the video now; it will be sent again", "busy")


@bp.before_request
def protocol_and_token() -> Response | None:
    # Answered here, before Flask's automatic OPTIONS reply, which lacks the tus headers.
    if request.method == "OPTIONS":
        response = Response(status=204)
        response.headers.update(
            {
                "Tus-Version": TUS_VERSION,
                "Tus-Extension": EXTENSIONS,
                "Tus-Max-Size": str(web.settings().max_upload_mb * 1024 * 1024),
            }
        )
        return response
    if request.method != "GET" and request.headers.get("Tus-Resumable") != TUS_VERSION:
        message = f"this server speaks tus {TUS_VERSION}; send Tus-Resumable: {TUS_VERSION}"
        return _error(412, message, "tus_version", **{"Tus-Version": TUS_VERSION})
    g.patient = patient.bearer_patient()
    return None


@bp.after_request
def tus_headers(response: Response) -> Response:
    response.headers["Tus-Resumable"] = TUS_VERSION
    response.headers["Cache-Control"] = "no-store"
    return response


def _number(header: str) -> int:
    value = request.headers.get(header, "")
    if not _NUMBER.fullmatch(value):
        raise uploads.UploadError(f"{header} must be a whole number of bytes")
    return int(value)


def _expire_now_and_then() -> None:
    # The web app expires abandoned uploads itself, so `vot serve` needs no extra timer.
    state = current_app.extensions["vot"]
    if time.monotonic() - state.get("uploads_expired_at", -EXPIRE_EVERY_S) >= EXPIRE_EVERY_S:
        state["uploads_expired_at"] = time.monotonic()
        try:
            upload_expiry.expire_uploads(web.engine(), web.settings())
        except (OSError, SQLAlchemyError):
            # Housekeeping must not cost a patient their upload; it is tried again later.
            logger.exception("could not expire abandoned uploads")


@bp.post("")
def create() -> Response:
    if "Upload-Defer-Length" in request.headers:
        raise uploads.UploadError("Upload-Defer-Length is not supported; send Upload-Length")
    _expire_now_and_then()
    up = upload_writes.create(
        web.engine(),
        web.settings(),
        g.patient.id,
        _number("Upload-Length"),
        request.headers.get("Upload-Metadata"),
    )
    response = Response(status=201)
    response.headers["Location"] = url_for(".upload", upload_id=up.id)
    response.headers["Upload-Offset"] = "0"
    return response


def _finish(up: uploads.Upload) -> Ingested:
    return upload_finish.finish(
        web.engine(), web.storage(), web.settings(), g.patient, up.id, web.ext("enqueue")
    )


def _state(response: Response, up: uploads.Upload, got: Ingested | None) -> Response:
    response.headers["Upload-Offset"] = str(up.offset)
    response.headers["Upload-Length"] = str(up.length)
    if got is not None:
        response.headers["Vot-Submission-Id"] = str(got.submission_id)
        response.headers["Vot-Submission-Status"] = got.status
        response.headers["Vot-Dose-Date"] = got.dose_date.isoformat()
    return response


@bp.get("/<upload_id>")  # HEAD is served by this view too; Werkzeug drops the body
def upload(upload_id: str) -> Response:
    up = uploads.get(web.engine(), g.patient.id, upload_id)
    if up.error is not None:
        return _error(410, up.error, uploads.Refused.code)
    # All bytes arrived but the reply to the last piece was lost: finish now (idempotent).
    got = _finish(up) if up.complete else None
    body = jsonify(offset=up.offset, length=up.length, submission_id=got and got.submission_id)
    return _state(body, up, got)


@bp.patch("/<upload_id>")
def append(upload_id: str) -> Response:
    if request.mimetype != "application/offset+octet-stream":
        message = "send the bytes as Content-Type: application/offset+octet-stream"
        return _error(415, message, "content_type")
    if request.content_length is None:
        return _error(411, "send Content-Length with each piece", "length_required")
    offset, count = _number("Upload-Offset"), request.content_length
    engine, settings = web.engine(), web.settings()
    up = upload_writes.append(
        engine, settings, g.patient.id, upload_id, offset, request.stream, count
    )
    got = _finish(up) if up.complete else None
    return _state(Response(status=204), up, got)


@bp.delete("/<upload_id>")
def terminate(upload_id: str) -> Response:
    upload_writes.terminate(web.engine(), web.settings(), g.patient.id, upload_id)
    return Response(status=204)
