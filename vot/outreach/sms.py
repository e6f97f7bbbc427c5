"""SMS through the programme's HTTP gateway: a POST of JSON ``{"to": "+86...", "text": "..."}``
to ``VOT_SMS_WEBHOOK_URL``, with the headers of ``VOT_SMS_WEBHOOK_HEADERS`` (an API key, say).

Any 2xx answer is a message handed over. A gateway that is down, slow (more than
:data:`TIMEOUT_S`), overloaded (429) or failing (5xx) is tried again later by the caller; one
that refuses the request (another 4xx) is not.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from vot.config import Settings

TIMEOUT_S = 10.0


class SendFailed(Exception):
    """An SMS the gateway did not take; ``retry`` says whether trying later may help."""

    def __init__(self, message: str, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


def configured(settings: Settings) -> bool:
    return settings.sms_webhook_url is not None


def send(settings: Settings, to: str, text: str, timeout_s: float | None = None) -> None:
    """Hand one SMS to the gateway.

    ``timeout_s`` (default :data:`TIMEOUT_S`) bounds the connection and each read.

    Raises:
        SendFailed: not taken; the message names the status or the network error (never the
            number or the headers).
    """
    if settings.sms_webhook_url is None:
        raise SendFailed("no SMS gateway is set (VOT_SMS_WEBHOOK_URL)", retry=False)
    body = json.dumps({"to": to, "text": text}, ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "vot-reminders"}
    headers.update(settings.sms_webhook_headers)
    request = urllib.request.Request(
        settings.sms_webhook_url, data=body, headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s or TIMEOUT_S) as reply:
            reply.read(4096)
    except urllib.error.HTTPError as exc:
        status = exc.code
        retry = status in (408, 429) or status >= 500
        raise SendFailed(f"SMS gateway answered {status}", retry=retry) from None
    except OSError as exc:  # URLError, timeouts, refused and reset connections
        reason = getattr(exc, "reason", exc)
        raise SendFailed(f"SMS gateway unreachable: {reason}", retry=True) from None
