"""Servers the reminder tests start on loopback: an SMS gateway, and a Web Push endpoint that
checks the VAPID signature (RFC 8292) and decrypts each message (RFC 8291) with the keys of a
subscription it made, as a browser's push service and the browser together would. The fixtures
``gateway`` and ``push_service`` start one for a test."""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Received:
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes
    at: float
    message: Any = None  # the JSON it carried (decrypted, for push)


@dataclass
class LocalServer:
    """An HTTP server on 127.0.0.1 answering POSTs as ``mode`` says: ``ok``, ``fail`` (500),
    ``refuse`` (400), ``gone`` (410) or ``hang`` (no answer for ``hang_s``)."""

    mode: str = "ok"
    hang_s: float = 30.0
    received: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                got = Received(self.path, headers, body, time.monotonic())
                status = outer.answer(got)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def answer(self, got: Received) -> int:
        if self.mode == "hang":
            time.sleep(self.hang_s)
            return 504
        if self.mode in ("fail", "refuse", "gone"):
            return {"fail": 500, "refuse": 400, "gone": 410}[self.mode]
        got.message = self.decode(got)
        self.received.append(got)
        return 201

    def decode(self, got: Received) -> Any:
        return json.loads(got.body)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SmsGateway(LocalServer):
    """The programme's SMS gateway: takes ``{"to", "text"}``."""

    @property
    def url(self) -> str:
        return f"{self.origin}/send"


class PushService(LocalServer):
    """A push service and the browser behind it: holds a subscription's private keys, checks
    the VAPID JWT and decrypts the aes128gcm body of every message."""

    def __post_init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.auth = secrets.token_bytes(16)
        self.channel = secrets.token_urlsafe(12)
        super().__post_init__()

    def subscription(self) -> dict[str, Any]:
        """What ``PushSubscription.toJSON()`` gives the page."""
        public = self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {
            "endpoint": f"{self.origin}/push/{self.channel}",
            "expirationTime": None,
            "keys": {"p256dh": b64url(public), "auth": b64url(self.auth)},
        }

    def decode(self, got: Received) -> Any:
        import http_ece

        check_vapid(got.headers, self.origin)
        assert got.headers.get("content-encoding") == "aes128gcm"
        assert int(got.headers["ttl"]) > 0
        plain = http_ece.decrypt(
            got.body, private_key=self.key, auth_secret=self.auth, version="aes128gcm"
        )
        return json.loads(plain)


def check_vapid(headers: dict[str, str], audience: str) -> dict[str, Any]:
    """The claims of the request's VAPID JWT, after checking its ES256 signature (RFC 8292)."""
    scheme, _, params = headers["authorization"].partition(" ")
    assert scheme == "vapid", headers["authorization"]
    parts = dict(p.strip().split("=", 1) for p in params.split(","))
    header_b64, claims_b64, signature_b64 = parts["t"].split(".")
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(parts["k"]))
    raw = unb64url(signature_b64)
    signature = encode_dss_signature(int.from_bytes(raw[:32]), int.from_bytes(raw[32:]))
    public.verify(signature, f"{header_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
    claims = json.loads(unb64url(claims_b64))
    assert claims["aud"] == audience and claims["exp"] > time.time(), claims
    assert urlsplit(claims["sub"]).scheme in ("mailto", "https", "http"), claims
    return claims


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def gateway() -> Iterator[SmsGateway]:
    server = SmsGateway()
    yield server
    server.close()


@pytest.fixture
def push_service() -> Iterator[PushService]:
    server = PushService()
    yield server
    server.close()
