"""The patient's page as a companion: its service worker and web app manifest, the reminder
time the patient sets, and the Web Push subscription of their phone.

The JSON routes take the link's token as ``Authorization: Bearer TOKEN``, like the rest of
``/api/v1/me``; bad input gets a 400 ``{"error"}`` and changes nothing.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, request, send_from_directory
from werkzeug.wrappers import Response

from review_ui import i18n, web
from review_ui.phone import page as patient
from vot import tokens
from vot.outreach import contact, push

bp = Blueprint("reach", __name__)
bp.register_error_handler(tokens.TokenError, patient.token_refused)
# The page's language tags (review_ui/i18n) and the reminders' (vot/outreach).
PAGE_TO_CONTACT = {"en": "en", "zh-Hans": "zh-CN"}
ICONS = (("icon-192.png", "192x192", "image/png"), ("icon-512.png", "512x512", "image/png"))


@bp.errorhandler(contact.ContactError)
@bp.errorhandler(push.PushError)
def refused(exc: ValueError) -> tuple[Response, int]:
    return jsonify(error=str(exc)), 400


@bp.get("/p/sw.js")
def service_worker() -> Response:
    """The service worker. Served under /p/ so that it may control a patient's page
    ``/p/TOKEN`` (a worker's scope is at most the folder of its script)."""
    response = send_from_directory(
        current_app.static_folder or "static", "sw.js", mimetype="text/javascript", max_age=0
    )
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/p/<token>/manifest.webmanifest")
def manifest(token: str) -> Response:
    """The web app manifest of one patient's page: it opens at their own link."""
    with web.engine().connect() as conn:
        tokens.resolve(conn, token)  # 401/403 JSON for a link that does not work
    lang = i18n.pick(request.args.get("lang"), None, request.accept_languages)
    t = i18n.messages(lang)
    home = f"/p/{token}"
    body = {
        "id": home,
        "name": t["page.title"],
        "short_name": t["manifest.short_name"],
        "description": t["page.intro"],
        "lang": lang,
        "start_url": home,
        "scope": home,
        "display": "standalone",
        "orientation": "portrait",
        "background_color": "#f3f5f7",
        "theme_color": "#0b6e4f",
        "icons": [
            {"src": f"/static/{name}", "sizes": sizes, "type": kind, "purpose": "any"}
            for name, sizes, kind in ICONS
        ]
        + [{"src": "/static/icon.svg", "sizes": "any", "type": "image/svg+xml"}],
    }
    response = jsonify(body)
    response.mimetype = "application/manifest+json"
    return response


def _state(patient_id: int) -> dict[str, Any]:
    with web.engine().connect() as conn:
        found = contact.get(conn, patient_id)
        subscribed = bool(push.live(conn, patient_id))
    return {
        "remind_at": found.remind_at,
        # Whether text messages go, never the number: anyone holding the phone sees this page.
        "sms": bool(found.phone and web.settings().sms_webhook_url),
        "push": subscribed,
        "second_after_min": web.settings().second_reminder_after_min,
    }


@bp.get("/api/v1/me/reminders")
def reminders() -> Any:
    """The patient's reminder time and how reminders reach them."""
    return jsonify(_state(patient.bearer_patient().id))


@bp.put("/api/v1/me/reminders")
def set_reminders() -> Any:
    """Set the reminder time (``{"remind_at": "HH:MM"}``, null for none) and, optionally, the
    language of the reminders (``"language"``: the page's, ``en`` or ``zh-Hans``)."""
    who = patient.bearer_patient()
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or "remind_at" not in body:
        raise contact.ContactError('send {"remind_at": "HH:MM"} (null: no reminders)')
    remind_at, language = body["remind_at"], body.get("language")
    if remind_at is not None and not isinstance(remind_at, str):
        raise contact.ContactError("a reminder time is HH:MM on the 24-hour clock, e.g. 08:30")
    changes: dict[str, Any] = {"remind_at": remind_at}
    if language is not None:
        if language not in PAGE_TO_CONTACT:
            raise contact.ContactError(f"the language is one of {', '.join(PAGE_TO_CONTACT)}")
        changes["language"] = PAGE_TO_CONTACT[language]
    with web.engine().begin() as conn:
        contact.update(conn, who.id, f"patient:{who.id}", **changes)
    return jsonify(_state(who.id))


@bp.post("/api/v1/me/push-subscriptions")
def subscribe() -> Any:
    """Store this phone's push subscription (``PushSubscription.toJSON()``)."""
    who = patient.bearer_patient()
    with web.engine().begin() as conn:
        push.subscribe(conn, web.settings(), who.id, request.get_json(silent=True))
    return jsonify(_state(who.id)), 201


@bp.delete("/api/v1/me/push-subscriptions")
def unsubscribe() -> Any:
    """Stop push reminders to one endpoint (``{"endpoint": ...}``), or to every phone."""
    who = patient.bearer_patient()
    body = request.get_json(silent=True)
    endpoint = body.get("endpoint") if isinstance(body, dict) else None
    with web.engine().begin() as conn:
        push.unsubscribe(conn, who.id, endpoint)
    return jsonify(_state(who.id))


@bp.app_context_processor
def for_templates() -> dict[str, Any]:
    """``vapid_key()``: the public key a page subscribes to Web Push with."""
    return {"vapid_key": lambda: push.public_key(web.settings())}
