"""Small helpers every blueprint shares: the app's settings, engine and store; error replies."""

from __future__ import annotations

from typing import Any

from flask import current_app, jsonify, render_template, request
from sqlalchemy import Engine
from werkzeug.wrappers import Response

from vot.config import Settings
from vot.storage import Storage


def settings() -> Settings:
    return current_app.extensions["vot"]["settings"]  # type: ignore[no-any-return]


def engine() -> Engine:
    return current_app.extensions["vot"]["engine"]  # type: ignore[no-any-return]


def ext(name: str) -> Any:
    """One of the objects ``create_app`` keeps for the blueprints (e.g. the login limiter)."""
    return current_app.extensions["vot"][name]


def storage() -> Storage:
    """The video store, opened on first use (opening S3 costs a client)."""
    ext = current_app.extensions["vot"]
    if ext.get("storage") is None:
        from vot.storage import open_storage

        ext["storage"] = open_storage(ext["settings"])
    return ext["storage"]  # type: ignore[no-any-return]


def wants_json() -> bool:
    """Whether the caller is a script (JSON body, JSON Accept header, fetch) rather than a page."""
    if request.path == "/healthz" or request.path.startswith("/api/") or request.is_json:
        return True
    if request.headers.get("X-Requested-With"):
        return True
    return request.accept_mimetypes.best == "application/json"


def error(status: int, message: str, **extra: Any) -> tuple[Response, int] | tuple[str, int]:
    """``{"error": message}`` for a script, a friendly page for a person."""
    if wants_json():
        return jsonify(error=message, **extra), status
    return render_template("error.html", status=status, message=message), status
