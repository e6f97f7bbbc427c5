"""CSRF tokens on every form, security headers on every reply, and the error pages."""

from __future__ import annotations

import hmac
import logging
import secrets
from urllib.parse import urlparse

from flask import Flask, request, session
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from review_ui import web
from vot.review import scope as review_scope

logger = logging.getLogger(__name__)

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Authenticated by an Authorization: Bearer token, never the session cookie; a cross-site page
# cannot send that header, so a CSRF token would protect nothing there.
BEARER_BLUEPRINTS = frozenset({"tus", "support", "reach"})

FRIENDLY = {
    400: "The request could not be understood.",
    401: "Please sign in.",
    403: "Your account cannot open this page.",
    404: "Not found, or not in your clinic.",
    405: "That action is not available here.",
    413: "That upload is too large.",
    429: "Too many attempts; wait a while and try again.",
    500: "Something went wrong on our side; it has been logged.",
}


def csrf_token() -> str:
    """This session's CSRF token, made on first use."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return str(session["csrf"])


def _check_csrf() -> tuple[object, int] | None:
    if request.method not in UNSAFE_METHODS or request.blueprint in BEARER_BLUEPRINTS:
        return None
    sent = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token") or ""
    expected = session.get("csrf") or ""
    if expected and hmac.compare_digest(sent.encode(), str(expected).encode()):
        return None
    logger.warning("refused %s %s: missing or wrong CSRF token", request.method, request.path)
    return web.error(
        400, "This form has expired or did not come from this site. Reload the page and try again."
    )


def _refuse_nul() -> tuple[object, int] | None:
    # PostgreSQL refuses a NUL in text: turn it away here, not as a 500 from deep in a query.
    values = [v for _, vs in request.args.lists() for v in vs]
    if request.blueprint not in BEARER_BLUEPRINTS:  # the upload's bytes are not a form
        values += [v for _, vs in request.form.lists() for v in vs]
    if any("\x00" in v for v in values):
        return web.error(400, "The request contains a NUL character.")
    return None


def content_security_policy(storage_url: str, s3_endpoint_url: str | None) -> str:
    """The CSP: only this site, no inline script; S3 added for media when videos live there."""
    media = "'self'"
    if storage_url.startswith("s3://"):
        # Videos are redirected to short-lived signed URLs on the store's own host.
        endpoint = urlparse(s3_endpoint_url) if s3_endpoint_url else None
        media += (
            f" {endpoint.scheme}://{endpoint.netloc}" if endpoint else " https://*.amazonaws.com"
        )
    return (
        f"default-src 'self'; img-src {media}; media-src {media}; object-src 'none'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


def trust_proxies(app: Flask, count: int) -> None:
    """Behind ``count`` reverse proxies (README "HTTPS"), take the client's address, scheme and
    host from their X-Forwarded-* headers: secure cookies, links and the login limiter need
    them. With 0 the headers are ignored (anyone could send them)."""
    if count:
        from werkzeug.middleware.proxy_fix import ProxyFix

        proxied = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count)
        app.wsgi_app = proxied  # type: ignore[method-assign]


def init_app(app: Flask, csp: str) -> None:
    """Install the CSRF check, the headers and the error handlers on ``app``."""
    app.before_request(_refuse_nul)
    app.before_request(_check_csrf)
    app.jinja_env.globals["csrf_token"] = csrf_token

    @app.after_request
    def headers(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = csp
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "same-origin"
        if not request.path.startswith("/static/"):
            # Pages and videos name patients: no shared or disk caches.
            response.headers.setdefault("Cache-Control", "private, no-store")
        return response

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):  # type: ignore[no-untyped-def]
        status = exc.code or 500
        return web.error(status, FRIENDLY.get(status, exc.description or exc.name))

    @app.errorhandler(review_scope.NotFound)
    def not_found(exc: review_scope.NotFound):  # type: ignore[no-untyped-def]
        return web.error(404, FRIENDLY[404])

    @app.errorhandler(PermissionError)
    def forbidden(exc: PermissionError):  # type: ignore[no-untyped-def]
        return web.error(403, FRIENDLY[403])

    @app.errorhandler(review_scope.ReviewError)
    def refused(exc: review_scope.ReviewError):  # type: ignore[no-untyped-def]
        return web.error(409 if isinstance(exc, review_scope.Conflict) else 400, str(exc))

    @app.errorhandler(Exception)
    def server_error(exc: Exception):  # type: ignore[no-untyped-def]
        logger.exception("unhandled error on %s %s", request.method, request.path)
        return web.error(500, FRIENDLY[500])
