"""Accept in bulk every waiting video above a confidence, after seeing how many."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, g, jsonify, redirect, render_template, request, url_for

from review_ui import auth, web
from vot.review import bulk as review_bulk
from vot.review import scope as review_scope

bp = Blueprint("bulk", __name__, url_prefix="/review/bulk")


@bp.before_request
def reviewers_only() -> Any:
    return auth.require_roles(*auth.REVIEW_ROLES)


def _number(name: str, cast: type) -> Any:
    try:
        return cast(request.values.get(name, ""))
    except ValueError:
        raise review_scope.ReviewError(f"{name} must be a number") from None


@bp.get("")
def preview() -> Any:
    with web.engine().connect() as conn:
        found = review_bulk.bulk_preview(conn, g.user, _number("min", float))
    if web.wants_json():
        return jsonify(
            count=found.count,
            held_back=found.held_back,
            upto_id=found.upto_id,
            min_confidence=found.min_confidence,
        )
    return render_template("bulk.html", preview=found)


@bp.post("")
def accept() -> Any:
    min_confidence, upto_id = _number("min", float), _number("upto_id", int)
    with web.engine().begin() as conn:
        done = review_bulk.bulk_accept(conn, g.user, min_confidence, upto_id)
    if web.wants_json():
        return jsonify(ok=True, accepted=done)
    flash(
        f"Accepted {done} videos with confidence at least {min_confidence:.2f}. "
        "Press Z to undo the whole bulk accept."
    )
    return redirect(url_for("review.queue"))
