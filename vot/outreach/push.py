"""Web Push to the patient's page (RFC 8030 delivery, RFC 8291 encryption, RFC 8292 VAPID).

The server's VAPID key pair is generated once into the data folder (``vapid_private_key.pem``,
readable by its owner only); browsers get the public half as the ``applicationServerKey`` of
their subscription. A subscription is stored only when its endpoint is at one of
``settings.push_services``, so the server never posts anywhere a page asked it to.
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, select

from vot import schema
from vot.config import Settings, keep_once
from vot.db import audit, utcnow

logger = logging.getLogger(__name__)

KEY_FILE = "vapid_private_key.pem"
TIMEOUT_S = 10.0  # a push service that does not answer by then is tried again later
MAX_SUBSCRIPTIONS = 5  # per patient: phones and browsers; the oldest goes first
ps = schema.push_subscriptions


class PushError(ValueError):
    """A subscription that cannot be stored; the message says why."""


class SendFailed(Exception):
    """A push that did not go through; ``retry`` says whether trying later may help, ``gone``
    that the subscription no longer exists (404, 410: never send to it again)."""

    def __init__(self, message: str, retry: bool, gone: bool = False) -> None:
        super().__init__(message)
        self.retry = retry
        self.gone = gone


@dataclass(frozen=True)
class Subscription:
    id: int
    endpoint: str
    p256dh: str
    auth: str


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def has_key(settings: Settings) -> bool:
    """Whether this machine's data folder holds the VAPID key (the web app makes it)."""
    return (settings.data_dir / KEY_FILE).is_file()


def private_key_path(settings: Settings) -> Path:
    """The VAPID private key (PEM), generated on first use; the same one from then on."""
    path = settings.data_dir / KEY_FILE
    if not path.exists():
        keep_once(path, _new_key)
        logger.info("the VAPID key pair for Web Push is in %s", path)
    return path


def _new_key() -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_key(settings: Settings) -> str:
    """The VAPID public key, base64url (the browser's ``applicationServerKey``)."""
    from cryptography.hazmat.primitives import serialization

    pem = private_key_path(settings).read_bytes()
    key = serialization.load_pem_private_key(pem, password=None)
    raw = key.public_key().public_bytes(  # type: ignore[union-attr]
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return _b64url(raw)


def _origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an http(s) URL, or None for anything else."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username:
        return None
    return parts.scheme, parts.hostname.lower(), port or (443 if parts.scheme == "https" else 80)


def origin_of(endpoint: str) -> str:
    """The push service of an endpoint, ``scheme://host:port`` (what fails together)."""
    got = _origin(endpoint)
    return f"{got[0]}://{got[1]}:{got[2]}" if got else endpoint


def allowed(endpoint: str, services: tuple[str, ...]) -> bool:
    """Whether ``endpoint`` is at one of the push services' origins (``*.`` matches subdomains)."""
    got = _origin(endpoint)
    if got is None:
        return False
    for service in services:
        wildcard = "://*." in service
        want = _origin(service.replace("://*.", "://", 1))
        if want is None or want[0] != got[0] or want[2] != got[2]:
            continue
        if got[1] == want[1] or (wildcard and got[1].endswith("." + want[1])):
            return True
    return False


def _key(value: object, name: str, length: int) -> str:
    """A base64url key of ``length`` bytes, as the browser gives it."""
    if isinstance(value, str) and len(value) < 200:
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        except ValueError:
            raw = b""
        if len(raw) == length:
            return value
    raise PushError(f"keys.{name} must be the subscription's base64url key ({length} bytes)")


def subscribe(conn: Connection, settings: Settings, patient_id: int, body: object) -> int:
    """Store a browser's ``PushSubscription.toJSON()`` for the patient; its id.

    The same endpoint again replaces its keys. A patient keeps at most
    :data:`MAX_SUBSCRIPTIONS`; older ones are revoked.

    Raises:
        PushError: not a subscription, or an endpoint outside ``settings.push_services``.
    """
    if not isinstance(body, dict) or not isinstance(body.get("keys"), dict):
        raise PushError('send {"endpoint": "https://...", "keys": {"p256dh": ..., "auth": ...}}')
    endpoint = body.get("endpoint")
    if not isinstance(endpoint, str) or len(endpoint) > 2000:
        raise PushError("endpoint must be the push service's URL")
    if not allowed(endpoint, settings.push_services):
        raise PushError("this push service is not one the clinic's server sends to")
    p256dh = _key(body["keys"].get("p256dh"), "p256dh", 65)
    auth = _key(body["keys"].get("auth"), "auth", 16)
    now = utcnow()
    live = ps.c.patient_id == patient_id, ps.c.revoked_at.is_(None)
    conn.execute(ps.update().where(*live, ps.c.endpoint == endpoint).values(revoked_at=now))
    sub_id = conn.execute(
        ps.insert().values(
            patient_id=patient_id, endpoint=endpoint, p256dh=p256dh, auth=auth, created_at=now
        )
    ).inserted_primary_key
    keep = select(ps.c.id).where(*live).order_by(ps.c.id.desc()).limit(MAX_SUBSCRIPTIONS)
    conn.execute(ps.update().where(*live, ps.c.id.not_in(keep)).values(revoked_at=now))
    audit(conn, f"patient:{patient_id}", "push.subscribe", f"patient:{patient_id}")
    return int(sub_id[0]) if sub_id else 0


def unsubscribe(conn: Connection, patient_id: int, endpoint: object) -> int:
    """Revoke the patient's subscription at ``endpoint`` (all of them when None); how many."""
    query = ps.update().where(ps.c.patient_id == patient_id, ps.c.revoked_at.is_(None))
    if endpoint is not None:
        query = query.where(ps.c.endpoint == str(endpoint))
    return int(conn.execute(query.values(revoked_at=utcnow())).rowcount)


def live(conn: Connection, patient_id: int) -> list[Subscription]:
    rows = conn.execute(
        select(ps.c.id, ps.c.endpoint, ps.c.p256dh, ps.c.auth).where(
            ps.c.patient_id == patient_id, ps.c.revoked_at.is_(None)
        )
    )
    return [Subscription(*row) for row in rows]


def revoke(conn: Connection, subscription_id: int) -> None:
    """The push service said the subscription is gone (404, 410): never send to it again."""
    conn.execute(
        ps.update()
        .where(ps.c.id == subscription_id, ps.c.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def send(settings: Settings, sub: Subscription, message: dict[str, Any], ttl_s: int) -> None:
    """Encrypt ``message`` (JSON) for the subscription and post it to its push service.

    Raises:
        SendFailed: the push service refused it or could not be reached; ``retry`` is False
            when the subscription is gone (404, 410) or the request is wrong (other 4xx).
    """
    import requests
    from pywebpush import WebPushException, webpush

    if not allowed(sub.endpoint, settings.push_services):
        raise SendFailed("the subscription's push service is no longer allowed", retry=False)
    claims: dict[str, str | int] = {"sub": settings.vapid_subject}
    try:
        webpush(
            {"endpoint": sub.endpoint, "keys": {"p256dh": sub.p256dh, "auth": sub.auth}},
            data=json.dumps(message, ensure_ascii=False),
            vapid_private_key=str(private_key_path(settings)),
            vapid_claims=claims,
            timeout=TIMEOUT_S,
            ttl=max(ttl_s, 60),
            headers={"Urgency": "high"},
        )
    except WebPushException as exc:
        status = exc.response.status_code if exc.response is not None else None
        retry = status is None or status in (408, 429) or status >= 500
        gone = status in (404, 410)
        raise SendFailed(f"push service answered {status}", retry=retry, gone=gone) from None
    except requests.RequestException as exc:
        raise SendFailed(f"push service unreachable: {type(exc).__name__}", retry=True) from None
