"""The supervisor review web app: ``create_app(settings)`` builds it (Flask's flaskr shape)."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, Flask, jsonify, redirect
from werkzeug.wrappers import Response

from vot.config import Settings, load_settings
from vot.db import get_engine
from vot.intake.ingest import Enqueue, no_queue


def _blueprints() -> tuple[Blueprint, ...]:
    """Every part of the app: the supervisors' pages, the patient's page and its APIs, the
    analysts' dashboard and API."""
    from review_ui import analyst, auth, fhir
    from review_ui.phone import page as patient
    from review_ui.phone import reach, support, tus
    from review_ui.supervisor import (
        bulk,
        contact,
        course,
        followup,
        media,
        outreach,
        patients,
        spotcheck,
    )
    from review_ui.supervisor import queue as review

    supervisor = (
        *(auth.bp, review.bp, bulk.bp, spotcheck.bp, media.bp),
        *(patients.bp, followup.bp, course.bp, outreach.bp),
        contact.bp,  # reminders on the patient's calendar page
    )
    phone = (
        patient.bp,  # the patient's page /p/TOKEN and /api/v1/me
        tus.bp,  # resumable video uploads at /api/v1/uploads
        support.bp,  # side effects and messages at /api/v1/me
        reach.bp,  # its service worker, manifest, reminders and push
    )
    return (*supervisor, *phone, analyst.bp, fhir.bp)  # fhir: /api/v1/fhir/Bundle


def create_app(settings: Settings | None = None, enqueue: Enqueue = no_queue) -> Flask:
    """Build the app for ``settings`` (from the ``VOT_*`` environment when None).

    ``enqueue`` queues each finished upload (``vot serve`` passes the rq queue's, see
    :func:`workers.queue.enqueuer`); without it the sweeper queues uploads within a minute.
    The database must already be migrated (``vot serve`` and the tests do that first).
    """
    from review_ui import auth, security

    settings = settings or load_settings()
    app = Flask(__name__)
    security.trust_proxies(app, settings.trusted_proxies)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        PERMANENT_SESSION_LIFETIME=timedelta(minutes=settings.session_minutes),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.public_url.startswith("https://"),
        MAX_CONTENT_LENGTH=settings.max_upload_mb * 1024 * 1024,
    )
    app.extensions["vot"] = {
        "settings": settings,
        "engine": get_engine(settings),
        "storage": None,  # opened on first use, see review_ui.web.storage
        "limiter": auth.LoginLimiter(),
        "enqueue": enqueue,
    }
    security.init_app(
        app, security.content_security_policy(settings.storage_url, settings.s3_endpoint_url)
    )
    for blueprint in _blueprints():
        app.register_blueprint(blueprint)

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify(ok=True)

    app.jinja_env.globals["home_url"] = auth.home_url

    @app.get("/")
    def index() -> Response:
        return redirect(auth.home_url())

    return app
