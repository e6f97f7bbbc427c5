"""What a tus client says about its upload: the ``Upload-Metadata`` header, file name and time."""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from datetime import datetime, timedelta

from vot.intake.uploads import BadMetadata

MAX_METADATA_CHARS = 4096
MAX_FILENAME_CHARS = 100
FUTURE_SLACK = timedelta(hours=26)  # the phone's clock may be a time zone or so off
_KEY = re.compile(r"[!-+\--~]{1,64}")  # printable ASCII without space or comma (tus)


def parse_metadata(header: str | None) -> dict[str, str]:
    """Decode a tus ``Upload-Metadata`` header: ``key base64value`` pairs separated by commas.

    Raises:
        BadMetadata: malformed, a duplicate key, a value that is not base64 of UTF-8 text, or
            longer than :data:`MAX_METADATA_CHARS`.
    """
    if not header or not header.strip():
        return {}
    if len(header) > MAX_METADATA_CHARS:
        raise BadMetadata(f"Upload-Metadata is longer than {MAX_METADATA_CHARS} characters")
    out: dict[str, str] = {}
    for pair in header.split(","):
        key, _, value = pair.strip().partition(" ")
        if not _KEY.fullmatch(key):
            raise BadMetadata("Upload-Metadata keys are 1-64 printable ASCII characters")
        if key in out:
            raise BadMetadata(f"Upload-Metadata has {key!r} twice")
        try:
            out[key] = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise BadMetadata(f"Upload-Metadata {key!r} is not base64 of UTF-8 text") from None
    return out


def clean_filename(name: str) -> str:
    """A file name safe to store and show: no folders, control characters or leading dots."""
    name = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    # C*: control, format (e.g. right-to-left override), surrogates; Zl/Zp: line breaks.
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = "".join(ch for ch in name if unicodedata.category(ch) not in ("Zl", "Zp"))
    name = name.strip().lstrip(".").strip()
    if len(name) > MAX_FILENAME_CHARS:
        stem, dot, ext = name.rpartition(".")
        keep = dot + ext if dot and len(ext) <= 8 else ""
        name = name[: MAX_FILENAME_CHARS - len(keep)].rstrip() + keep
    return name or "video"


def parse_recorded_at(text: str, now: datetime) -> datetime:
    """The recording time from ISO 8601 text with a UTC offset.

    Raises:
        BadMetadata: not ISO 8601, no offset, before 2000, or more than a day ahead of ``now``.
    """
    example = "e.g. 2026-03-01T08:30:00+08:00"
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadMetadata(f"recorded_at must be an ISO 8601 time, {example}") from None
    if value.tzinfo is None or value.utcoffset() is None:
        raise BadMetadata(f"recorded_at needs a UTC offset, {example}")
    try:
        if value.year < 2000 or value > now + FUTURE_SLACK:
            raise OverflowError
    except OverflowError:
        raise BadMetadata(
            "the recording time is impossible; check the phone's date and time"
        ) from None
    return value
