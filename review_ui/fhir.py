"""``GET /api/v1/fhir/Bundle``: the FHIR R4 export of ``vot export fhir`` over HTTP, a page of
patients at a time (analysts and admins only; patients under their pseudonym).

A national bundle holds a resource per expected dose (about 180 per patient), so the API
pages by patient: ``limit`` patients (100 by default, at most 1000) from ``offset``, with a
``next`` link while there are more. Each page is written as it is made, so memory holds the
page's patients, not its resources.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, request, url_for

from review_ui import analyst, auth, web
from vot.adherence.scope import Scope
from vot.db import audit, utcnow
from vot.reporting import ReportingError, fhir

bp = Blueprint("fhir", __name__)
DEFAULT_LIMIT, MAX_LIMIT = 100, 1000


@bp.before_request
def analysts_only() -> Any:
    return auth.require_roles(*analyst.ROLES)


@bp.errorhandler(analyst.BadRequest)
@bp.errorhandler(ReportingError)
def bad_request(exc: ValueError) -> Any:
    return web.error(400, str(exc))


@bp.get("/api/v1/fhir/Bundle")
def bundle() -> Any:
    since = analyst.query_date("since")
    limit = analyst.query_int("limit", DEFAULT_LIMIT, MAX_LIMIT)
    if limit < 1:
        raise analyst.BadRequest(f"limit must be a whole number from 1 to {MAX_LIMIT}")
    offset = analyst.query_int("offset", 0, 10**9)
    text = {k: request.args.get(k, "").strip() or None for k in ("district", "clinic")}
    scope = Scope(district=text["district"], clinic=text["clinic"])
    now = utcnow()
    with web.engine().begin() as conn:
        fhir.check_clinic(conn, scope.clinic)
        page = next(fhir.pages(conn, now, scope, limit, offset), [])
        audit(
            conn,
            g.user.username,
            "export.fhir",
            "",
            filters={k: v for k, v in text.items() if v},
            since=since.isoformat() if since else None,
            offset=offset,
            patients=len(page),
        )
    public, next_url = web.settings().public_url, None
    if len(page) == limit:  # the next page's address, as the deployment is reached
        args = {k: v for k, v in request.args.items() if k not in ("offset", "limit")}
        next_url = public + url_for("fhir.bundle", **args, limit=limit, offset=offset + limit)
    names = fhir.Names(f"{public}/fhir")
    chunks = fhir.bundle_chunks(fhir.entries(names, page, since), now, next_url)
    return Response(chunks, mimetype="application/fhir+json")
