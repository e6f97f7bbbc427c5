"""The review queue, an item's page, verdicts and undo."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from flask import Blueprint, flash, g, jsonify, redirect, render_template, request, session, url_for
from sqlalchemy import Connection

from review_ui import auth, web
from review_ui.supervisor import followup
from vot import schema
from vot.adherence import ledger
from vot.db import utcnow
from vot.outreach import side_effects
from vot.pipeline import replays
from vot.review import item as review_item
from vot.review import queue as review_queue
from vot.review import scope as review_scope
from vot.review import verdicts as review_verdicts

bp = Blueprint("review", __name__, url_prefix="/review")
PAGE_SIZE = 50
FILTER_KEYS = ("patient", "from", "to", "reason", "order")
DONE = {"accept": "Accepted", "reject": "Rejected", "unclear": "Marked unclear"}


@bp.before_request
def reviewers_only() -> Any:
    return auth.require_roles(*auth.REVIEW_ROLES)


def _date(value: str | None, label: str) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        raise review_scope.ReviewError(f"{label} must be a date like 2024-03-31") from None


def filters_from(args: Any) -> review_queue.QueueFilters:
    """Queue filters from query arguments (or the copy kept in the session).

    Raises:
        vot.review.scope.ReviewError: a malformed value (shown as 400).
    """
    return review_queue.QueueFilters(
        patient_code=(args.get("patient") or "").strip() or None,
        date_from=_date(args.get("from"), "From"),
        date_to=_date(args.get("to"), "To"),
        reason=args.get("reason") or None,
        order=args.get("order") or "likely",
    )


def today_start() -> datetime:
    """Midnight UTC today: where the "today" counts start."""
    return utcnow().replace(hour=0, minute=0, second=0, microsecond=0)


@bp.get("")
def queue() -> Any:
    filters = filters_from(request.args)
    kept = {k: request.args[k] for k in FILTER_KEYS if request.args.get(k)}
    session["queue"] = kept  # the item pages walk the queue the supervisor was looking at
    page = request.args.get("page", "1")
    page = int(page) if page.isdigit() and int(page) > 0 else 1
    with web.engine().connect() as conn:
        counts = review_queue.counts(conn, g.user, today_start())
        items = review_queue.queue(conn, g.user, filters, PAGE_SIZE, (page - 1) * PAGE_SIZE)
        urgent = set(side_effects.open_urgent(conn, [i.patient_id for i in items]))
        filtered = any(k != "order" for k in kept)
        total = review_queue.queue_size(conn, g.user, filters) if filtered else counts.waiting
    flipped = dict(kept, order="doubtful" if filters.order == "likely" else "likely")
    # A supervisor's clinic is small enough to count its escalated patients on every visit; an
    # admin's nation is not (the follow-up page counts them per clinic).
    escalated = None
    if g.user.clinic_scope is not None:
        escalated = sum(1 for f in followup.listed() if f.escalated)
    return render_template(
        "queue.html",
        items=items,
        counts=counts,
        escalated=escalated,
        urgent=urgent,
        total=total,
        page=page,
        pages=max(1, -(-total // PAGE_SIZE)),
        filters=filters,
        kept=kept,
        flipped=flipped,
        reasons=review_queue.REASON_TEXT,
        reason_text=review_queue.reason_text,
    )


def _walk(conn: Connection, sub_id: int, step: int) -> int | None:
    """The neighbour in the spot-check sample when ``sub_id`` is in it, else in the queue."""
    sample = session.get("sample") or []
    if sub_id in sample:
        at = sample.index(sub_id) + step
        return sample[at] if 0 <= at < len(sample) else None
    return review_queue.neighbour(
        conn, g.user, filters_from(session.get("queue", {})), sub_id, step
    )


@bp.get("/<int:sub_id>")
def item(sub_id: int) -> Any:
    with web.engine().connect() as conn:
        detail = review_item.item(conn, g.user, sub_id)
        figures = ledger.for_patient(conn, detail.patient_id)
        prev_id, next_id = _walk(conn, sub_id, -1), _walk(conn, sub_id, 1)
        waiting = review_queue.queue_size(conn, g.user)
        urgent = side_effects.open_urgent(conn, [detail.patient_id]).get(detail.patient_id, [])
        replayed = replays.same_as(conn, sub_id)
    return render_template(
        "item.html",
        item=detail,
        urgent=urgent,
        replayed=replayed,
        adherence=figures,
        prev_id=prev_id,
        next_id=next_id,
        waiting=waiting,
        reject_reasons=review_verdicts.REJECT_REASONS,
        reason_text=review_queue.reason_text,
        decidable=detail.status in review_verdicts.DECIDABLE,
        spot=detail.status == schema.AUTO_ACCEPTED,
    )


def _after(conn: Connection, sub_id: int, previous_status: str) -> str:
    """Where to go once ``sub_id`` is decided: on through the sample, or the queue."""
    if previous_status == schema.AUTO_ACCEPTED:
        next_id = _walk(conn, sub_id, 1)
        return url_for("review.item", sub_id=next_id) if next_id else url_for("spotcheck.auto")
    next_id = review_queue.next_after(conn, g.user, filters_from(session.get("queue", {})), sub_id)
    if next_id is None:
        flash("The queue is clear: nothing is waiting.")
        return url_for("review.queue", **session.get("queue", {}))
    return url_for("review.item", sub_id=next_id)


@bp.post("/<int:sub_id>/verdict")
def verdict(sub_id: int) -> Any:
    form = request.form
    try:
        with web.engine().begin() as conn:
            decision = review_verdicts.record_verdict(
                conn, g.user, sub_id, form.get("verdict", ""), form.get("reason"), form.get("note")
            )
    except review_scope.Conflict as exc:
        if web.wants_json():
            return web.error(409, str(exc))
        flash(str(exc))
        with web.engine().connect() as conn:
            return redirect(_after(conn, sub_id, schema.REVIEW))
    except review_scope.ReviewError as exc:
        if web.wants_json():
            return web.error(400, str(exc))
        flash(str(exc))
        return redirect(url_for("review.item", sub_id=sub_id))
    with web.engine().connect() as conn:
        target = _after(conn, sub_id, decision.previous_status)
    if web.wants_json():
        return jsonify(ok=True, submission_id=sub_id, status=decision.status, next=target)
    flash(f"{DONE[decision.verdict]} video #{sub_id}. Press Z to undo.")
    return redirect(target)


@bp.post("/undo")
def undo() -> Any:
    try:
        with web.engine().begin() as conn:
            ids = review_verdicts.undo_last(conn, g.user)
    except review_scope.ReviewError as exc:
        if web.wants_json():
            return web.error(409 if isinstance(exc, review_scope.Conflict) else 400, str(exc))
        flash(str(exc))
        return redirect(url_for("review.queue", **session.get("queue", {})))
    if web.wants_json():
        return jsonify(ok=True, submission_ids=ids)
    if len(ids) == 1:
        flash(f"Undone: video #{ids[0]} is waiting for a decision again.")
        return redirect(url_for("review.item", sub_id=ids[0]))
    flash(f"Undone: the bulk accept of {len(ids)} videos.")
    return redirect(url_for("review.queue", **session.get("queue", {})))
