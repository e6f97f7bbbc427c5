"""Clinics, staff accounts, patients and their regimens.

Passwords are hashed with scrypt (memory-hard, in the standard library). Each function works in
the caller's connection so a caller can group several changes in one transaction.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Connection, select

from vot import schema
from vot.db import audit, inserted_id, utcnow
from vot.treatment import catalog, courses

_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


class AccountError(ValueError):
    """A request about accounts or patients that cannot be carried out, and why."""


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$salt$hash``, all base64 where binary."""
    if len(password) < 8:
        raise AccountError("a password needs at least 8 characters")
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P)
    b64 = base64.b64encode
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches a hash made by :func:`hash_password`."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


def check_timezone(name: str) -> str:
    """Return ``name`` if it is an IANA time zone, else raise AccountError."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise AccountError(
            f"unknown time zone {name!r}; use an IANA name such as Asia/Shanghai or UTC"
        ) from None
    return name


def ensure_clinic(conn: Connection, name: str, district: str = "") -> int:
    """The id of clinic ``name``, created if missing."""
    name = name.strip()
    if not name:
        raise AccountError("a clinic needs a name")
    row = conn.execute(select(schema.clinics.c.id).where(schema.clinics.c.name == name)).first()
    if row:
        return int(row[0])
    result = conn.execute(
        schema.clinics.insert().values(name=name, district=district, created_at=utcnow())
    )
    audit(conn, "system", "clinic.create", f"clinic:{inserted_id(result)}", name=name)
    return inserted_id(result)


def ensure_user(
    conn: Connection, username: str, password: str, role: str, clinic_id: int | None
) -> tuple[int, bool]:
    """Create a staff account, or reset its password if it exists; returns (id, created)."""
    if role not in schema.ROLES:
        raise AccountError(f"role must be one of {', '.join(schema.ROLES)}, got {role!r}")
    if role == "supervisor" and clinic_id is None:
        raise AccountError("a supervisor belongs to a clinic")
    users = schema.users
    row = conn.execute(select(users.c.id).where(users.c.username == username)).first()
    hashed = hash_password(password)
    if row:
        conn.execute(
            users.update()
            .where(users.c.id == row[0])
            .values(password_hash=hashed, role=role, clinic_id=clinic_id, disabled=False)
        )
        audit(conn, "system", "user.password_reset", f"user:{row[0]}")
        return int(row[0]), False
    result = conn.execute(
        users.insert().values(
            username=username,
            password_hash=hashed,
            role=role,
            clinic_id=clinic_id,
            disabled=False,
            created_at=utcnow(),
        )
    )
    user_id = inserted_id(result)
    audit(conn, "system", "user.create", f"user:{user_id}", role=role)
    return user_id, True


@dataclass(frozen=True)
class Patient:
    id: int
    code: str
    clinic_id: int
    timezone: str
    pseudonym: str


def get_patient(conn: Connection, code: str) -> Patient:
    """The patient with this code.

    Raises:
        AccountError: no such patient.
    """
    p = schema.patients
    row = conn.execute(
        select(p.c.id, p.c.code, p.c.clinic_id, p.c.timezone, p.c.pseudonym).where(p.c.code == code)
    ).first()
    if row is None:
        raise AccountError(f"no patient with code {code!r}; enrol them with `vot patient add`")
    return Patient(*row)


def add_patient(
    conn: Connection,
    code: str,
    clinic_id: int,
    start: date,
    timezone: str = "UTC",
    length_days: int | None = None,
    regimen_id: str | None = None,
    actor: str = "system",
) -> tuple[Patient, bool]:
    """Enrol a patient on a regimen; returns (patient, created). An existing code is kept as is.

    The regimen is ``regimen_id`` (default :data:`vot.treatment.regimens.DEFAULT_REGIMEN`), or,
    with ``length_days`` alone, a daily course of that many days (courses of a shape no
    regimen describes, as enrolled before regimens were data).

    Raises:
        AccountError: a malformed code, time zone or length.
        vot.treatment.regimens.RegimenError: no such regimen.
    """
    code = code.strip()
    if not code or len(code) > 64 or not code.replace("-", "").replace("_", "").isalnum():
        raise AccountError("a patient code is 1-64 letters, digits, '-' or '_'")
    check_timezone(timezone)
    if length_days is not None and not 1 <= length_days <= 1000:
        raise AccountError("a regimen lasts 1 to 1000 days")
    try:
        return get_patient(conn, code), False
    except AccountError:
        pass
    if length_days is None:
        regimen_id = catalog.get(conn, regimen_id or courses.DEFAULT_REGIMEN).id
    now = utcnow()
    result = conn.execute(
        schema.patients.insert().values(
            code=code,
            clinic_id=clinic_id,
            timezone=timezone,
            pseudonym="P-" + secrets.token_hex(6).upper(),
            created_at=now,
        )
    )
    patient_id = inserted_id(result)
    courses.enrol(conn, patient_id, start, regimen_id, length_days, now)
    audit(
        conn,
        actor,
        "patient.enrol",
        f"patient:{patient_id}",
        start=start.isoformat(),
        regimen=regimen_id,
        length_days=length_days,
    )
    return get_patient(conn, code), True
