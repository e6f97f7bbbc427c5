"""Sign-in and sign-out, the signed-in user on ``g.user``, and role checks.

Sessions last ``settings.session_minutes`` from sign-in. Failed sign-ins are limited per
username and address, in memory: enough for one clinic server, reset on restart.
"""

from __future__ import annotations

import functools
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from flask import Blueprint, flash, g, redirect, render_template, request, session, url_for
from sqlalchemy import select

from review_ui import web
from review_ui.security import csrf_token
from vot import schema
from vot.accounts import hash_password, verify_password
from vot.db import audit
from vot.review.scope import Reviewer

logger = logging.getLogger(__name__)
bp = Blueprint("auth", __name__)

MAX_FAILURES, FAILURE_WINDOW_S = 10, 15 * 60
REVIEW_ROLES = ("supervisor", "admin")
# Checked when the username is unknown, so a wrong name takes as long as a wrong password.
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


class LoginLimiter:
    """At most ``limit`` failed sign-ins per key within ``window_s`` seconds."""

    def __init__(self, limit: int = MAX_FAILURES, window_s: float = FAILURE_WINDOW_S) -> None:
        self.limit, self.window_s = limit, window_s
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return times

    def blocked_for(self, key: tuple[str, str]) -> float:
        """Seconds until ``key`` may try again; 0 when it may now."""
        now = time.monotonic()
        with self._lock:
            times = self._recent(key, now)
            return times[0] + self.window_s - now if len(times) >= self.limit else 0.0

    def fail(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._recent(key, time.monotonic()).append(time.monotonic())

    def clear(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._failures.pop(key, None)


@bp.before_app_request
def load_user() -> None:
    """Put the signed-in, enabled user on ``g.user`` (None otherwise); end expired sessions."""
    g.user = None
    user_id = session.get("user_id")
    if user_id is None:
        return
    if time.time() - session.get("login_at", 0) > web.settings().session_minutes * 60:
        session.clear()
        g.session_expired = True
        return
    u = schema.users
    with web.engine().connect() as conn:
        row = conn.execute(
            select(u.c.id, u.c.username, u.c.role, u.c.clinic_id).where(
                u.c.id == user_id, u.c.disabled.is_(False)
            )
        ).first()
    if row is None:
        session.clear()
        return
    g.user = Reviewer(row.id, row.username, row.role, row.clinic_id)


def _signed_out() -> Any:
    if web.wants_json():
        return web.error(401, "sign in first")
    if getattr(g, "session_expired", False):
        flash("Your session expired; please sign in again.")
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def require_roles(*roles: str) -> Any:
    """For ``before_request``: a signed-in user with one of ``roles``, else 401/redirect or 403."""
    if g.user is None:
        return _signed_out()
    if g.user.role not in roles:
        return web.error(403, "Your account cannot open review pages or videos.")
    return None


def login_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator: the view needs a signed-in user of any role."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        return _signed_out() if g.user is None else view(*args, **kwargs)

    return wrapped


# Each role's start page: where signing in, "/" and the links of an error page lead.
HOME = {"supervisor": "review.queue", "admin": "review.queue", "analyst": "analyst.dashboard"}


def home_url() -> str:
    """The signed-in user's start page (the sign-in page when nobody is signed in)."""
    user = g.get("user")
    return url_for(HOME.get(user.role, "auth.login") if user else "auth.login")


def _safe_next(target: str | None) -> str:
    # Only a path on this site: "//host" or "https://host" would make this an open redirect.
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return home_url()


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    next_url = request.values.get("next")
    if request.method == "GET":
        return render_template("login.html", next=next_url)
    username = request.form.get("username", "").strip()
    key = (username.lower(), request.remote_addr or "")
    limiter: LoginLimiter = web.ext("limiter")
    wait = limiter.blocked_for(key)
    if wait:
        flash(f"Too many failed sign-ins. Try again in {int(wait // 60) + 1} minutes.")
        return render_template("login.html", next=next_url, username=username), 429
    u = schema.users
    with web.engine().begin() as conn:
        row = conn.execute(
            select(u.c.id, u.c.password_hash, u.c.disabled).where(u.c.username == username)
        ).first()
        ok = verify_password(
            request.form.get("password", ""), row.password_hash if row else _DUMMY_HASH
        )
        if not ok or row is None or row.disabled:
            limiter.fail(key)
            audit(
                conn,
                "anonymous",
                "auth.login_failed",
                f"user:{row.id}" if row else "",
                address=request.remote_addr,
            )
            flash("Sign-in failed: the username or password is wrong.")
            return render_template("login.html", next=next_url, username=username), 401
        audit(conn, username, "auth.login", f"user:{row.id}", address=request.remote_addr)
    limiter.clear(key)
    session.clear()  # a new session on sign-in: no fixation, a fresh CSRF token
    session.permanent = True
    session.update(user_id=row.id, login_at=int(time.time()))
    csrf_token()
    load_user()  # the start page depends on who signed in
    logger.info("user %s signed in", row.id)
    return redirect(_safe_next(next_url))


@bp.post("/logout")
def logout() -> Any:
    if g.user is not None:
        with web.engine().begin() as conn:
            audit(conn, g.user.username, "auth.logout", f"user:{g.user.id}")
    session.clear()
    flash("You are signed out.")
    return redirect(url_for("auth.login"))
