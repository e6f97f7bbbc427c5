"""Patient links: stable, stored only as a hash, rotated and revoked; and `vot patient link`."""

from __future__ import annotations

import subprocess
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.conftest import run_cli
from vot import accounts, schema, tokens


@pytest.fixture
def codes(engine) -> tuple[str, str]:
    with engine.begin() as conn:
        clinic = accounts.ensure_clinic(conn, "Clinic A")
        accounts.add_patient(conn, "P-1", clinic, date(2026, 11, 1), "Asia/Shanghai")
        accounts.add_patient(conn, "P-2", clinic, date(2026, 11, 1))
    return "P-1", "P-2"


def test_link_is_stable_per_patient_and_only_its_hash_is_stored(engine, settings, codes) -> None:
    with engine.begin() as conn:
        first = tokens.link_token(conn, settings.secret_key, "P-1")
        again = tokens.link_token(conn, settings.secret_key, "P-1")
        other = tokens.link_token(conn, settings.secret_key, "P-2")
        stored = conn.execute(select(schema.patient_tokens.c.token_hash)).scalars().all()
    assert first == again != other
    assert len(first) == 22 and first.replace("-", "").replace("_", "").isalnum()
    assert len(stored) == 2 and first not in stored and tokens.token_hash(first) in stored
    # The link depends on the secret key: another deployment cannot forge it.
    assert tokens.make_token("another key", 1, 1) != tokens.make_token(settings.secret_key, 1, 1)
    with engine.connect() as conn:
        assert tokens.resolve(conn, first).code == "P-1"
        assert tokens.resolve(conn, other).code == "P-2"


@pytest.mark.parametrize(
    "bad", ["", "short", "x" * 22, "a" * 21 + "!", "../../etc/passwd", "é" * 22, "a" * 500]
)
def test_malformed_or_unknown_tokens_are_unknown(engine, codes, bad: str) -> None:
    with engine.connect() as conn, pytest.raises(tokens.UnknownToken):
        tokens.resolve(conn, bad)


def test_rotate_revokes_the_old_link_and_revoke_ends_all(engine, settings, codes) -> None:
    key = settings.secret_key
    with engine.begin() as conn:
        old = tokens.link_token(conn, key, "P-1")
        new = tokens.rotate(conn, key, "P-1")
        assert new != old
        assert tokens.link_token(conn, key, "P-1") == new  # re-printing gives the new one
        with pytest.raises(tokens.RevokedToken):
            tokens.resolve(conn, old)
        assert tokens.resolve(conn, new).code == "P-1"
        assert tokens.revoke(conn, "P-1") == 1
        with pytest.raises(tokens.RevokedToken):
            tokens.resolve(conn, new)
        # A revoked patient gets no link back by accident; only an explicit rotate issues one.
        with pytest.raises(tokens.TokenError, match="rotate-link"):
            tokens.link_token(conn, key, "P-1")
        third = tokens.rotate(conn, key, "P-1")
        assert len({old, new, third}) == 3 and tokens.resolve(conn, third).code == "P-1"


def test_a_changed_secret_key_cannot_reprint_the_link(engine, settings, codes) -> None:
    with engine.begin() as conn:
        tokens.link_token(conn, settings.secret_key, "P-1")
        with pytest.raises(tokens.TokenError, match="secret key changed"):
            tokens.link_token(conn, "a different key", "P-1")
        with pytest.raises(accounts.AccountError):
            tokens.link_token(conn, settings.secret_key, "NOBODY")


def vot(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "VOT_DATA_DIR": str(tmp_path / "data"),
        "VOT_SECRET_KEY": "cli-secret",
        "VOT_PUBLIC_URL": "http://192.0.2.10:8000",
    }
    return run_cli(*args, env=env, timeout=120)


def test_cli_link_prints_the_same_url_until_rotated(tmp_path: Path) -> None:
    assert vot(tmp_path, "patient", "add", "P-7", "--clinic", "North").returncode == 0
    first, again = (vot(tmp_path, "patient", "link", "P-7") for _ in range(2))
    assert first.returncode == 0, first.stderr
    url = first.stdout.strip()
    assert url == again.stdout.strip()
    assert url.startswith("http://192.0.2.10:8000/p/") and len(url.rsplit("/", 1)[1]) == 22
    rotated = vot(tmp_path, "patient", "rotate-link", "P-7").stdout.strip()
    assert rotated.startswith("http://192.0.2.10:8000/p/") and rotated != url
    assert (
        vot(tmp_path, "patient", "revoke-link", "P-7").stdout.strip().endswith("1 link(s) revoked")
    )
    after = vot(tmp_path, "patient", "link", "P-7")
    assert after.returncode == 1 and "rotate-link" in after.stderr
    unknown = vot(tmp_path, "patient", "link", "NOBODY")
    assert unknown.returncode == 1 and "no patient" in unknown.stderr
