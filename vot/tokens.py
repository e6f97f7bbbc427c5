"""Patient links: the secret in ``/p/TOKEN`` that lets one patient upload and see their own doses.

A token is an HMAC of the secret key over (patient id, generation), so ``vot patient link`` can
print the same link again without the token being stored: the database keeps only its SHA-256.
Rotating issues the next generation and revokes the old one; revoking ends every link of the
patient. A token opens nothing but its patient's uploads, calendar and submissions.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re

from sqlalchemy import Connection, func, select

from vot import schema
from vot.accounts import Patient, get_patient
from vot.db import audit, utcnow

logger = logging.getLogger(__name__)

TOKEN_BYTES = 16  # 128 bits: unguessable, and short enough for a link sent by SMS
_SHAPE = re.compile(r"[A-Za-z0-9_-]{22}")
t, p = schema.patient_tokens, schema.patients


class TokenError(LookupError):
    """A link that cannot be used or made; the message says what to do."""


class UnknownToken(TokenError):
    """No patient has this token (mistyped, made with another secret key, or not a token)."""


class RevokedToken(TokenError):
    """The token was valid once and has been revoked or replaced."""


def make_token(secret_key: str, patient_id: int, generation: int) -> str:
    """The token of ``patient_id``'s link number ``generation`` (deterministic)."""
    if not secret_key:
        raise TokenError("no secret key is configured; set VOT_SECRET_KEY")
    message = f"vot-patient-link:{patient_id}:{generation}".encode()
    digest = hmac.new(secret_key.encode(), message, hashlib.sha256).digest()[:TOKEN_BYTES]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _issue(conn: Connection, secret_key: str, patient_id: int, actor: str) -> str:
    # Rows are never deleted, so the row count numbers the generations.
    issued = conn.execute(select(func.count()).where(t.c.patient_id == patient_id)).scalar_one()
    token = make_token(secret_key, patient_id, issued + 1)
    conn.execute(
        t.insert().values(patient_id=patient_id, token_hash=token_hash(token), created_at=utcnow())
    )
    audit(conn, actor, "patient.link_issue", f"patient:{patient_id}", generation=issued + 1)
    return token


def link_token(conn: Connection, secret_key: str, code: str, actor: str = "cli") -> str:
    """The patient's current token, issuing the first one if they have none.

    Raises:
        vot.accounts.AccountError: no such patient.
        TokenError: the link was revoked (issue a new one with :func:`rotate`), or the secret key
            changed since it was issued.
    """
    patient = get_patient(conn, code)
    rows = conn.execute(
        select(t.c.token_hash, t.c.revoked_at).where(t.c.patient_id == patient.id)
    ).all()
    active = {r.token_hash for r in rows if r.revoked_at is None}
    if not rows:
        return _issue(conn, secret_key, patient.id, actor)
    if not active:
        raise TokenError(
            f"the link of patient {code} was revoked; issue a new one with "
            "`vot patient rotate-link`"
        )
    for generation in range(len(rows), 0, -1):
        token = make_token(secret_key, patient.id, generation)
        if token_hash(token) in active:
            return token
    raise TokenError(
        "the secret key changed since this link was issued, so it cannot be printed again; "
        "issue a new one with `vot patient rotate-link`"
    )


def revoke(conn: Connection, code: str, actor: str = "cli") -> int:
    """Revoke every link of the patient; returns how many were active.

    Raises:
        vot.accounts.AccountError: no such patient.
    """
    patient = get_patient(conn, code)
    result = conn.execute(
        t.update()
        .where(t.c.patient_id == patient.id, t.c.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    audit(conn, actor, "patient.link_revoke", f"patient:{patient.id}", revoked=result.rowcount)
    return int(result.rowcount)


def rotate(conn: Connection, secret_key: str, code: str, actor: str = "cli") -> str:
    """Revoke the patient's links and issue a new one; returns the new token."""
    patient = get_patient(conn, code)
    revoke(conn, code, actor)
    return _issue(conn, secret_key, patient.id, actor)


def resolve(conn: Connection, token: str) -> Patient:
    """The patient a token belongs to.

    The lookup is by the token's SHA-256, so timing reveals nothing about stored tokens.

    Raises:
        UnknownToken: not a token of any patient.
        RevokedToken: the token was revoked or replaced.
    """
    if not _SHAPE.fullmatch(token or ""):
        raise UnknownToken("this link is not valid")
    row = conn.execute(
        select(t.c.revoked_at, p.c.code)
        .join(p, p.c.id == t.c.patient_id)
        .where(t.c.token_hash == token_hash(token))
    ).first()
    if row is None:
        raise UnknownToken("this link is not valid")
    if row.revoked_at is not None:
        raise RevokedToken("this link no longer works; ask the clinic for a new one")
    return get_patient(conn, row.code)


def patient_url(public_url: str, token: str) -> str:
    """The personal page of the patient with ``token``."""
    return f"{public_url.rstrip('/')}/p/{token}"
