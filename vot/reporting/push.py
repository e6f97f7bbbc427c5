"""Send a data value set to a DHIS2 server (``POST URL/api/dataValueSets``, basic auth).

The set is sent twice: first as a dry run (``dryRun=true``), which DHIS2 checks in full and
stores nothing of, then for real only if the dry run had no conflict. So a server that would
refuse part of the data (an unknown org unit, data element or category option combo, a
closed period) refuses all of it, and nothing is half imported. Any refusal (an HTTP error,
a redirect, an import summary with status ERROR or with conflicts) raises :class:`PushError`
with a one-line message.

Basic auth sends the password with every request, so only HTTPS is used, except to the
machine itself (``localhost``, ``127.0.0.1``, ``::1``).
"""

from __future__ import annotations

import base64
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vot.reporting import ReportingError

LOOPBACK = {"localhost", "127.0.0.1", "::1"}
TIMEOUT_S = 120.0


class PushError(ReportingError):
    """DHIS2 could not be reached or refused the data; nothing was imported."""


@dataclass(frozen=True)
class ImportSummary:
    """What DHIS2 says it did with the data values."""

    status: str  # SUCCESS, WARNING or ERROR
    imported: int = 0
    updated: int = 0
    ignored: int = 0
    deleted: int = 0
    conflicts: tuple[str, ...] = ()
    description: str = ""

    def describe(self) -> str:
        return (
            f"DHIS2 import summary: {self.status}; imported {self.imported}, updated "
            f"{self.updated}, ignored {self.ignored}, deleted {self.deleted}"
        )


def endpoint(url: str) -> str:
    """``URL/api/dataValueSets`` for a DHIS2 base URL (with its context path, if any).

    Raises:
        PushError: not an http(s) URL, credentials in it, or plain http to another machine.
    """
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PushError(f"the DHIS2 URL must be like https://dhis2.example.org, not {url!r}")
    if parts.username or parts.password:
        raise PushError("give the user with --user and the password on stdin, not in the URL")
    if parts.scheme == "http" and parts.hostname not in LOOPBACK:
        raise PushError("the DHIS2 URL must use https: basic auth would send the password in clear")
    return urllib.parse.urlunsplit(parts._replace(query="", fragment="")).rstrip("/") + (
        "/api/dataValueSets"
    )


def _one_line(text: str, longest: int = 300) -> str:
    flat = re.sub(r"\s+", " ", text).strip()
    return flat if len(flat) <= longest else flat[: longest - 1] + "…"


def summary_of(body: Any) -> ImportSummary:
    """The import summary in a reply: DHIS2 2.38 and later wrap it (``{"response": {...}}``),
    earlier versions answer with it alone.

    Raises:
        PushError: the reply is not an import summary.
    """
    found = body.get("response", body) if isinstance(body, Mapping) else None
    if not isinstance(found, Mapping) or "status" not in found:
        raise PushError("DHIS2 answered with something that is not an import summary")
    counts = found.get("importCount") or {}
    conflicts = tuple(
        _one_line(f"{c.get('object', '')}: {c.get('value', '')}".strip(": "))
        for c in found.get("conflicts") or []
        if isinstance(c, Mapping)
    )
    return ImportSummary(
        str(found["status"]),
        int(counts.get("imported", 0)),
        int(counts.get("updated", 0)),
        int(counts.get("ignored", 0)),
        int(counts.get("deleted", 0)),
        conflicts,
        _one_line(str(found.get("description") or body.get("message") or "")),
    )


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any) -> None:  # a redirect is a refusal, not a retry
        return None


def _post(url: str, auth: str, payload: bytes, params: Mapping[str, str]) -> ImportSummary:
    request = urllib.request.Request(
        f"{url}?{urllib.parse.urlencode(params)}",
        data=payload,
        method="POST",
        headers={
            "Authorization": f"Basic {auth}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        },
    )
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=TIMEOUT_S) as reply:
            text = reply.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        raise PushError(_refusal(exc)) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise PushError(f"cannot reach DHIS2 at {url}: {_one_line(str(reason))}") from None
    try:
        return summary_of(json.loads(text))
    except json.JSONDecodeError:
        raise PushError("DHIS2 answered with something that is not JSON") from None


def _refusal(exc: urllib.error.HTTPError) -> str:
    if 300 <= exc.code < 400:
        return f"DHIS2 redirected the request (HTTP {exc.code}); check the URL and the user"
    text = exc.read().decode("utf-8", "replace")
    try:
        summary = summary_of(json.loads(text))
        why = summary.conflicts[0] if summary.conflicts else summary.description
    except (json.JSONDecodeError, PushError, AttributeError):
        why = text
    return f"DHIS2 refused the data (HTTP {exc.code}): {_one_line(why) or exc.reason}"


def _check(summary: ImportSummary, stage: str) -> ImportSummary:
    if summary.status == "ERROR" or summary.conflicts:
        first = summary.conflicts[0] if summary.conflicts else summary.description
        more = f" (and {len(summary.conflicts) - 1} more)" if len(summary.conflicts) > 1 else ""
        raise PushError(f"DHIS2 refused the data in the {stage}: {first or summary.status}{more}")
    return summary


def push(url: str, user: str, password: str, payload: Mapping[str, Any]) -> ImportSummary:
    """Send ``payload`` (a data value set) to the DHIS2 at ``url``; the import summary.

    Raises:
        PushError: the URL is unusable, DHIS2 cannot be reached, or it refused the data
            (refused in the dry run: nothing was imported).
    """
    target = endpoint(url)
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    body = json.dumps(payload).encode()
    params = {
        "dataElementIdScheme": payload["dataElementIdScheme"],
        "categoryOptionComboIdScheme": payload["categoryOptionComboIdScheme"],
        "orgUnitIdScheme": payload["orgUnitIdScheme"],
        "importStrategy": "CREATE_AND_UPDATE",
    }
    _check(_post(target, auth, body, {**params, "dryRun": "true"}), "dry run")
    # After a clean dry run only a change on the server in between can refuse; what it took
    # stays until the next push, which replaces the same values (CREATE_AND_UPDATE).
    return _check(_post(target, auth, body, {**params, "dryRun": "false"}), "import")
