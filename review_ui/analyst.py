"""Analysts: the adherence dashboard, the HTTP API (``/api/v1/...``) and the CSV export.

Analysts and admins only. Nothing here shows a video, a patient code or a name: patients
appear under their pseudonym. The API is described in ``static/openapi.json``.
"""

from __future__ import annotations

import io
import logging
import threading
from dataclasses import asdict
from datetime import date
from typing import Any

from flask import Blueprint, Response, g, jsonify, redirect, render_template, request, url_for
from sqlalchemy import Engine

from review_ui import auth, web
from vot.adherence import analytics, export, outcomes
from vot.adherence import dashboard as boards
from vot.adherence.rules import STANDARD
from vot.adherence.scope import Scope
from vot.db import audit, utcnow

logger = logging.getLogger(__name__)
bp = Blueprint("analyst", __name__)
ROLES = ("analyst", "admin")
MAX_LIMIT = 10_000


class BadRequest(ValueError):
    """A query argument that cannot be used; the message says which."""


@bp.before_request
def analysts_only() -> Any:
    return auth.require_roles(*ROLES)


@bp.errorhandler(BadRequest)
def bad_request(exc: BadRequest) -> Any:
    return web.error(400, str(exc))


def query_date(name: str) -> date | None:
    value = request.args.get(name, "").strip()
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        raise BadRequest(f"{name} must be a date like 2025-03-31") from None


def query_int(name: str, default: int, most: int) -> int:
    value = request.args.get(name, "").strip() or str(default)
    if not value.isdigit() or int(value) > most:
        raise BadRequest(f"{name} must be a whole number from 0 to {most}")
    return int(value)


def _scope() -> Scope:
    text = {k: request.args.get(k, "").strip() or None for k in ("district", "clinic")}
    return Scope(text["district"], text["clinic"], query_date("start_from"), query_date("start_to"))


@bp.errorhandler(export.NoSnapshot)
def no_snapshot(exc: export.NoSnapshot) -> Any:
    return web.error(409, str(exc))


def _exported(fmt: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The export rows for the request's filters, and what they state about themselves.

    ``source=snapshot`` reads the rows of the last refresh (409 when there is none; 400 with
    ``as_of``, which only a live export can count to). ``source=auto`` reads them when it
    can (no ``as_of``, a snapshot with export rows) and computes live otherwise.
    """
    scope, as_of, now = _scope(), query_date("as_of"), utcnow()
    source = request.args.get("source", "").strip() or "live"
    if source not in export.SOURCES:
        raise BadRequest(f"source must be one of {', '.join(export.SOURCES)}")
    limit = query_int("limit", 1000, MAX_LIMIT) if fmt == "json" else None
    offset = query_int("offset", 0, 10**9) if fmt == "json" else 0
    computed_at = None
    with web.engine().begin() as conn:
        auto = source == "auto"
        if auto:
            source = "live" if as_of else "snapshot"
        if source == "snapshot":
            try:
                computed_at, rows = export.snapshot_records(
                    conn, as_of, scope, STANDARD, limit, offset
                )
            except export.SnapshotAsOf as exc:
                raise BadRequest(str(exc)) from None
            except export.NoSnapshot:
                if not auto:
                    raise
                source = "live"
        if source == "live":
            rows = export.records(conn, now, as_of, scope, STANDARD, limit, offset)
        meta = export.metadata(now, as_of, scope, STANDARD, len(rows), computed_at)
        audit(
            conn,
            g.user.username,
            f"export.adherence.{fmt}",
            "",
            filters=meta["filters"],
            as_of=meta["as_of"],
            source=meta["source"],
            rows=len(rows),
        )
    if limit is not None:
        meta.update(
            limit=limit, offset=offset, next_offset=offset + limit if len(rows) == limit else None
        )
    return meta, rows


@bp.get("/api/v1/adherence")
def adherence_json() -> Any:
    meta, rows = _exported("json")
    return jsonify({**meta, "items": rows})


@bp.get("/api/v1/adherence.csv")
def adherence_csv() -> Any:
    meta, rows = _exported("csv")
    out = io.StringIO()
    export.write_csv(rows, out, STANDARD)
    if meta["source"] == "snapshot":  # the name says which figures these are
        name = f"adherence-snapshot-{meta['computed_at'][:16].replace(':', '')}Z.csv"
    else:
        name = f"adherence-{meta['as_of'] or meta['generated_at'][:10]}.csv"
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "X-VOT-Generated-At": meta["generated_at"],
            "X-VOT-As-Of": meta["as_of"] or "today",
            "X-VOT-Source": meta["source"],
            "X-VOT-Computed-At": meta["computed_at"],
            "Link": f'<{url_for("analyst.definitions")}>; rel="describedby"',
        },
    )


@bp.get("/api/v1/definitions")
def definitions() -> Any:
    return jsonify(export.definitions(STANDARD))


_refreshing = threading.Lock()


def _refresh_in_background(engine: Engine) -> None:
    try:
        with engine.begin() as conn:
            analytics.refresh(conn, utcnow())
    except Exception:  # a thread has no one to raise to: say so in the log
        logger.exception("refreshing the adherence snapshot failed")
    finally:
        _refreshing.release()


def _dashboard() -> boards.Dashboard:
    """The dashboard from the snapshot: computed now if there is none; if it is stale, it is
    served as it is while a background thread recomputes it (a national refresh takes minutes).
    """
    district = request.args.get("district", "").strip() or None
    clinic = request.args.get("clinic", "").strip() or None
    with web.engine().begin() as conn:
        at = analytics.computed_at(conn)
        if at is None:
            analytics.refresh(conn, utcnow())
        elif utcnow() - at > analytics.MAX_AGE and _refreshing.acquire(blocking=False):
            threading.Thread(
                target=_refresh_in_background,
                args=(web.engine(),),
                name="adherence-refresh",
                daemon=True,
            ).start()
        return boards.dashboard(conn, district, clinic)


def _stale(board: boards.Dashboard) -> bool:
    return board.computed_at is None or utcnow() - board.computed_at > analytics.MAX_AGE


@bp.get("/api/v1/dashboard")
def dashboard_json() -> Any:
    board = _dashboard()
    found = asdict(board)
    found["computed_at"] = board.computed_at.isoformat() if board.computed_at else None
    return jsonify(found)


@bp.get("/analyst")
def dashboard() -> Any:
    board = _dashboard()
    with web.engine().connect() as conn:
        places = boards.districts(conn)
    return render_template(
        "analyst.html",
        board=board,
        places=places,
        items=_items(board),
        threshold=STANDARD.below_pct / 100,
        stale=_stale(board),
        outcome_labels=outcomes.LABELS,
    )


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f}%"


def _items(board: boards.Dashboard) -> dict[str, list[tuple[str, Any, str]]]:
    """The charts' (label, value, text) items."""
    s = board.summary
    groups = sorted(board.groups, key=lambda g: (g["adherence"] is None, g["adherence"] or 0))
    weeks = board.weeks
    return {
        "distribution": [
            (d["band"], d["patients"], str(d["patients"])) for d in board.distribution
        ],
        "trend": [(w["week_start"], w["adherence"], _pct(w["adherence"])) for w in weeks],
        "groups": [
            (
                g["name"] or "(no district)",
                g["adherence"],
                f"{_pct(g['adherence'])} of {g['patients']}",
            )
            for g in groups
        ],
        "flagged": [
            (
                label,
                s[key] / s["patients"] if s["patients"] else None,
                f"{_pct(s[key] / s['patients'] if s['patients'] else None)} ({s[key]})",
            )
            for label, key in (
                (f"Below {STANDARD.below_pct}%", "below"),
                ("Lost to follow-up", "ltfu"),
                ("Treatment completed", "completed"),
            )
        ],
        "videos": [(w["week_start"][5:], w["videos"] / 7, f"{w['videos'] / 7:.0f}") for w in weeks],
        "auto": [
            (w["week_start"], w["auto_accepted_share"], _pct(w["auto_accepted_share"]))
            for w in weeks
        ],
    }


@bp.post("/analyst/refresh")
def refresh() -> Any:
    with web.engine().begin() as conn:
        analytics.refresh(conn, utcnow())
        audit(conn, g.user.username, "analytics.refresh")
    district, clinic = (request.args.get(k) or None for k in ("district", "clinic"))
    return redirect(url_for("analyst.dashboard", district=district, clinic=clinic))
