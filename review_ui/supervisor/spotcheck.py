"""The auto-accepted tab: recent auto-accepts, a random sample to spot-check, the agreement."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, render_template, request, session

from review_ui import auth, web
from vot.review import queue as review_queue
from vot.review import spotchecks as review_spotchecks

bp = Blueprint("spotcheck", __name__, url_prefix="/review/auto")
PAGE_SIZE = 50
SAMPLE_SIZES = (5, 10, 20)


@bp.before_request
def reviewers_only() -> Any:
    return auth.require_roles(*auth.REVIEW_ROLES)


@bp.get("")
def auto() -> Any:
    size = request.args.get("sample", "")
    page = request.args.get("page", "1")
    page = int(page) if page.isdigit() and int(page) > 0 else 1
    with web.engine().connect() as conn:
        figures = review_spotchecks.agreement(conn, g.user)
        if size.isdigit() and int(size) in SAMPLE_SIZES:
            items = review_spotchecks.spot_check_sample(conn, g.user, int(size))
            # The item pages walk this sample with J/K and move on through it after a verdict.
            session["sample"] = [i.submission_id for i in items]
        else:
            items = review_spotchecks.auto_accepted(conn, g.user, PAGE_SIZE, (page - 1) * PAGE_SIZE)
    return render_template(
        "auto.html",
        items=items,
        agreement=figures,
        sampling=size.isdigit(),
        sizes=SAMPLE_SIZES,
        page=page,
        page_size=PAGE_SIZE,
        reason_text=review_queue.reason_text,
    )
