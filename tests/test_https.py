"""Recording over HTTPS in a real Chromium, as a clinic runs it: ``vot serve --certfile
--keyfile`` with a self-signed certificate made here, and the README's nginx block in front of
``vot serve`` (Debian's nginx; skipped where it is not installed, required in CI).

The page is opened as ``https://clinic.test:PORT`` (Chromium maps the name to 127.0.0.1), not
as ``localhost``, which browsers treat as secure even over plain HTTP: the camera opens here only
because the connection is HTTPS with a certificate the browser trusts (pinned by its public key
with ``--ignore-certificate-errors-spki-list``)."""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, select

from tests import test_browser_patient
from tests.test_browser_patient import (
    EN,
    PHONE,
    camera_file,
    launch,
    record,
    shows,
    watch_console,
)
from tests.test_serve import free_port, wait_for
from vot import schema
from vot.config import REPO_ROOT

HOST = "clinic.test"
playwright = test_browser_patient.playwright  # the browser tests' fixture
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path
    spki_sha256: str  # base64, for Chromium's --ignore-certificate-errors-spki-list


def self_signed(folder: Path, names: tuple[str, ...] = (HOST, "localhost")) -> Certificate:
    """A self-signed certificate for ``names`` and 127.0.0.1, as ``openssl req -x509`` makes."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = datetime.datetime.now(datetime.UTC)
    alt = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    out = Certificate(folder / "cert.pem", folder / "key.pem", "")
    out.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    out.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return Certificate(out.cert, out.key, base64.b64encode(hashlib.sha256(spki).digest()).decode())


class Clinic:
    """A data folder with one patient, and ``vot serve`` running on it."""

    def __init__(self, folder: Path, **env: str) -> None:
        self.folder = folder
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("VOT_")}
        self.env.update(VOT_DATA_DIR=str(folder / "data"), VOT_SECRET_KEY="t", **env)
        self.cli = [sys.executable, "-m", "vot.app.cli"]
        self.run("patient", "add", "P-1", "--clinic", "North", "--tz", "Asia/Shanghai")
        self.token = self.run("patient", "link", "P-1").strip().rsplit("/", 1)[1]
        self.proc: subprocess.Popen[bytes] | None = None

    def run(self, *args: str) -> str:
        done = subprocess.run(
            [*self.cli, *args], env=self.env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def serve(self, port: int, *args: str) -> None:
        self.log = (self.folder / "serve.log").open("w")
        self.proc = subprocess.Popen(
            [*self.cli, "serve", "--port", str(port), "--workers", "1", *args],
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            return -9
        finally:
            self.log.close()

    def submissions(self) -> list:
        engine = create_engine(f"sqlite:///{self.folder / 'data' / 'vot.db'}")
        with engine.connect() as conn:
            found = list(conn.execute(select(schema.submissions)))
        engine.dispose()
        return found


def answers(url: str, cert: Certificate) -> bool:
    try:
        return requests.get(url, verify=str(cert.cert), timeout=3).ok
    except requests.RequestException:
        return False


def phone(playwright, cert: Certificate, y4m: Path):
    """Chromium that trusts only ``cert`` and reaches clinic.test on loopback."""
    return launch(
        playwright,
        y4m,
        f"--host-resolver-rules=MAP {HOST} 127.0.0.1",
        f"--ignore-certificate-errors-spki-list={cert.spki_sha256}",
    )


def record_a_dose(browser, url: str, artifacts: Path | None = None) -> None:
    """Open the page at ``url``, check it is secure, record 3 s and see it received."""
    ctx = browser.new_context(viewport=PHONE, locale="en-US", permissions=["camera"])
    page = ctx.new_page()
    errors = watch_console(page)
    page.goto(url)
    assert page.evaluate("window.isSecureContext") is True
    assert page.locator("#open-camera").is_visible()
    record(page, 3)
    shows(page, "#send-text", EN["send.received"], 30_000)
    # The service worker registers on HTTPS and controls the page once it is reloaded.
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    page.reload()
    assert page.evaluate("navigator.serviceWorker.controller !== null") is True
    shows(page, "#today-text", EN["today.received"], 10_000)
    if artifacts is not None:
        page.screenshot(path=str(artifacts / "patient_https_en.png"))
    assert errors == []
    ctx.close()


@pytest.mark.browser
def test_recording_over_https_from_vot_serve(playwright, tmp_path, artifacts_dir) -> None:
    cert = self_signed(tmp_path)
    clinic = Clinic(tmp_path)
    port = free_port()
    clinic.serve(port, "--certfile", str(cert.cert), "--keyfile", str(cert.key))
    browser = phone(playwright, cert, camera_file(tmp_path, "face.y4m"))
    try:
        wait_for(lambda: answers(f"https://127.0.0.1:{port}/healthz", cert), 60, "vot serve")
        with pytest.raises(requests.ConnectionError):  # HTTPS only on that port
            requests.get(f"http://127.0.0.1:{port}/healthz", timeout=3)
        record_a_dose(browser, f"https://{HOST}:{port}/p/{clinic.token}", artifacts_dir)
        [row] = clinic.submissions()
        assert row.original_filename.endswith(".webm") and row.duration_s > 2
    finally:
        browser.close()
        code = clinic.stop()
    assert code == 0 and "serving on https://" in (tmp_path / "serve.log").read_text()


def test_serve_refuses_a_key_that_does_not_match(tmp_path) -> None:
    (tmp_path / "other").mkdir()
    first, other = self_signed(tmp_path), self_signed(tmp_path / "other")
    clinic = Clinic(tmp_path)
    done = subprocess.run(
        [*clinic.cli, "serve", "--certfile", str(first.cert), "--keyfile", str(other.key)],
        env=clinic.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and done.stderr.startswith("vot: error: cannot serve HTTPS")
    assert done.stderr.count("\n") == 1


def readme_nginx() -> str:
    """The nginx block of the README, which this test runs as it is (names and ports swapped)."""
    text = (REPO_ROOT / "README.md").read_text()
    [block] = re.findall(r"```nginx\n(.*?)```", text, re.S)
    return block


def nginx_conf(folder: Path, cert: Certificate, http: int, https: int, upstream: int) -> Path:
    site = (
        readme_nginx()
        .replace("vot.example.org", HOST)
        .replace("listen 80;", f"listen 127.0.0.1:{http};")
        .replace("listen 443 ", f"listen 127.0.0.1:{https} ")
        .replace(f"/etc/letsencrypt/live/{HOST}/fullchain.pem", str(cert.cert))
        .replace(f"/etc/letsencrypt/live/{HOST}/privkey.pem", str(cert.key))
        .replace("127.0.0.1:8000", f"127.0.0.1:{upstream}")
    )
    assert str(cert.cert) in site and f"127.0.0.1:{upstream}" in site
    # The main context Debian's /etc/nginx/nginx.conf gives, with everything in the test folder.
    conf = folder / "nginx.conf"
    user = "user root root;\n" if os.geteuid() == 0 else ""
    conf.write_text(
        f"{user}daemon off;\npid {folder}/nginx.pid;\nerror_log {folder}/error.log;\n"
        "events {}\nhttp {\n"
        f"access_log {folder}/access.log;\n"
        + "".join(
            f"{kind}_temp_path {folder}/{kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        + site
        + "}\n"
    )
    return conf


@pytest.mark.browser
def test_recording_through_the_readmes_nginx(playwright, tmp_path) -> None:
    if NGINX is None:
        if os.environ.get("CI") == "true":
            pytest.fail("nginx is missing; .ci/run installs it")
        pytest.skip("nginx is not installed (apt-get install nginx) to test the README's setup")
    cert = self_signed(tmp_path)
    http, https, app = free_port(), free_port(), free_port()
    clinic = Clinic(tmp_path, VOT_TRUSTED_PROXIES="1", VOT_PUBLIC_URL=f"https://{HOST}:{https}")
    clinic.serve(app)
    conf = nginx_conf(tmp_path, cert, http, https, app)
    nginx = subprocess.Popen([NGINX, "-p", str(tmp_path), "-c", str(conf)], start_new_session=True)
    browser = phone(playwright, cert, camera_file(tmp_path, "face.y4m"))
    try:
        wait_for(lambda: answers(f"https://127.0.0.1:{https}/healthz", cert), 60, "nginx and vot")
        moved = requests.get(
            f"http://127.0.0.1:{http}/p/x", headers={"Host": HOST}, allow_redirects=False
        )
        assert moved.status_code == 301 and moved.headers["Location"] == f"https://{HOST}/p/x"
        # The app sees the client's scheme through the proxy: the language cookie is Secure.
        page = requests.get(
            f"https://127.0.0.1:{https}/p/{clinic.token}?lang=en", verify=str(cert.cert)
        )
        assert page.ok and "Secure" in page.headers["Set-Cookie"]
        # The same page over plain HTTP, straight from vot serve, is not a secure origin: no
        # camera on the page there, only the phone's camera app.
        plain = browser.new_page(viewport=PHONE)
        plain.goto(f"http://{HOST}:{app}/p/{clinic.token}")
        assert plain.evaluate("window.isSecureContext") is False
        assert not plain.locator("#open-camera").is_visible()
        assert plain.locator("#file-label").is_visible()
        plain.close()
        record_a_dose(browser, f"https://{HOST}:{https}/p/{clinic.token}")
        [row] = clinic.submissions()
        assert row.original_filename.endswith(".webm") and row.duration_s > 2
    finally:
        browser.close()
        os.killpg(nginx.pid, signal.SIGTERM)
        nginx.wait(timeout=30)
        clinic.stop()
