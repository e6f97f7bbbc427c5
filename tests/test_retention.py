"""Retention and erasure on real SQLite/PostgreSQL with a real local store and S3 (moto server).

The store is listed after each step, so "deleted" means the object is really gone from the store
and "kept" means it is really still there.
"""

from __future__ import annotations

import io
import re
import secrets
import subprocess
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, func, select
from test_review import World, make_world
from test_review_ui import csrf, form_token, login

from review_ui import create_app
from tests.conftest import run_cli
from vot import schema, tokens
from vot.accounts import get_patient
from vot.adherence import ledger
from vot.adherence import rules as adherence
from vot.config import ConfigError, Settings, load_settings
from vot.db import as_utc, utcnow
from vot.intake import uploads
from vot.intake import writes as upload_writes
from vot.pipeline import machine as pipeline
from vot.retention import erasure
from vot.retention import policy as retention
from vot.review import verdicts as review_verdicts
from vot.storage import LocalStorage, S3Storage, Storage, open_storage
from vot.storage import keys as storage_keys

s = schema.submissions
NOW = utcnow()


@pytest.fixture(params=["local", "s3"])
def store(
    request: pytest.FixtureRequest, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> tuple[Settings, Storage]:
    """Settings and the store they name: a local folder, or a fresh bucket on the moto server."""
    if request.param == "local":
        return settings, open_storage(settings)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    bucket = f"vot-{secrets.token_hex(4)}"
    s3_settings = settings.with_(
        storage_url=f"s3://{bucket}/videos",
        s3_endpoint_url=request.getfixturevalue("s3_endpoint"),
    )
    storage = open_storage(s3_settings)
    assert isinstance(storage, S3Storage)
    storage.client.create_bucket(Bucket=bucket)
    return s3_settings, storage


def listing(storage: Storage) -> set[str]:
    """Every key in the store, as the application names them."""
    if isinstance(storage, LocalStorage):
        return {str(p.relative_to(storage.root)) for p in storage.root.rglob("*") if p.is_file()}
    assert isinstance(storage, S3Storage)
    keys = set()
    for page in storage.client.get_paginator("list_objects_v2").paginate(
        Bucket=storage.bucket, Prefix=storage.prefix + "/"
    ):
        keys |= {o["Key"][len(storage.prefix) + 1 :] for o in page.get("Contents", ())}
    return keys


def put(storage: Storage, tmp: Path, key: str, data: bytes = b"video bytes") -> None:
    src = tmp / "obj"
    src.write_bytes(data)
    storage.put_file(key, src)


def add_video(
    engine: Engine,
    storage: Storage,
    tmp: Path,
    patient_id: int,
    status: str,
    decided_days_ago: float,
    *,
    day: date | None = None,
    sha: str | None = None,
    transcoded: bool = True,
) -> tuple[int, set[str]]:
    """A submission whose last status change was ``decided_days_ago``, with its objects stored.

    Returns its id and every key it has in the store (raw, review copy, poster, a still).
    """
    sha = sha or secrets.token_hex(32)
    changed = NOW - timedelta(days=decided_days_ago)
    with engine.begin() as conn:
        sub_id = int(
            conn.execute(
                s.insert().values(
                    patient_id=patient_id,
                    dose_date=day or (NOW - timedelta(days=int(decided_days_ago) + 1)).date(),
                    received_at=changed - timedelta(minutes=5),
                    content_sha256=sha,
                    size_bytes=11,
                    raw_key=storage_keys.raw(sha),
                    status=status,
                    attempts=1,
                    updated_at=changed,
                )
            ).inserted_primary_key[0]
        )
        keys = {storage_keys.raw(sha)}
        if transcoded:
            conn.execute(
                s.update()
                .where(s.c.id == sub_id)
                .values(review_key=f"review/{sub_id}.mp4", poster_key=f"poster/{sub_id}.jpg")
            )
            keys |= {f"review/{sub_id}.mp4", f"poster/{sub_id}.jpg", f"stills/{sub_id}/1200.jpg"}
        if status not in schema.PROCESSING_STATUSES:
            conn.execute(
                schema.scores.insert().values(
                    submission_id=sub_id,
                    model_version="test-1",
                    threshold_version="v1",
                    confidence=0.9,
                    decision="auto_accept" if status == schema.AUTO_ACCEPTED else "review",
                    face_visible=True,
                    max_faces=1,
                    events=[],
                    quality={},
                    reasons=[],
                    created_at=changed,
                )
            )
    for key in keys:
        put(storage, tmp, key)
    return sub_id, keys


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in (schema.submissions, schema.scores, schema.reviews)
        }


def statuses(engine: Engine) -> dict[int, str]:
    with engine.connect() as conn:
        return {r.id: r.status for r in conn.execute(select(s.c.id, s.c.status))}


def audit_rows(engine: Engine, action: str) -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(schema.audit_log)
                .where(schema.audit_log.c.action == action)
                .order_by(schema.audit_log.c.id)
            )
        )


def figures(engine: Engine, patient_id: int) -> adherence.Adherence:
    with engine.connect() as conn:
        return ledger.for_patient(conn, patient_id, NOW)


@pytest.fixture
def world(engine: Engine) -> World:
    return make_world(engine)


def test_settings_defaults_and_checks(tmp_path: Path) -> None:
    base = {"VOT_DATA_DIR": str(tmp_path), "VOT_SECRET_KEY": "k"}
    defaults = load_settings(base)
    assert (defaults.retain_raw_days, defaults.retain_review_days) == (7, 90)
    assert defaults.retention_every_s == 3600
    custom = load_settings({**base, "VOT_RETAIN_RAW_DAYS": "2", "VOT_RETAIN_REVIEW_DAYS": "30"})
    assert (custom.retain_raw_days, custom.retain_review_days) == (2, 30)
    with pytest.raises(ConfigError, match="VOT_RETAIN_REVIEW_DAYS"):
        load_settings({**base, "VOT_RETAIN_RAW_DAYS": "30", "VOT_RETAIN_REVIEW_DAYS": "7"})
    with pytest.raises(ConfigError, match="positive"):
        load_settings({**base, "VOT_RETAIN_RAW_DAYS": "0"})


def test_keys_match_what_the_transcoder_writes() -> None:
    assert storage_keys.derived(42) == (storage_keys.review_copy(42), storage_keys.poster(42))


def test_retention_deletes_old_decided_videos_and_keeps_the_rest(
    engine: Engine, world: World, store: tuple[Settings, Storage], tmp_path: Path
) -> None:
    settings, storage = store
    pa = world.patient_a
    raw_only, keys_raw_only = add_video(engine, storage, tmp_path, pa, schema.ACCEPTED, 10)
    old_auto, keys_old_auto = add_video(engine, storage, tmp_path, pa, schema.AUTO_ACCEPTED, 100)
    old_unclear, keys_unclear = add_video(engine, storage, tmp_path, pa, schema.UNCLEAR, 95)
    # A rejected-as-unusable video never had a review copy; its raw upload still goes.
    old_unusable, keys_unusable = add_video(
        engine, storage, tmp_path, pa, schema.REJECTED, 30, transcoded=False
    )
    _, keys_recent = add_video(engine, storage, tmp_path, pa, schema.REJECTED, 3)
    _, keys_waiting = add_video(engine, storage, tmp_path, pa, schema.REVIEW, 200)
    _, keys_processing = add_video(engine, storage, tmp_path, pa, schema.TRANSCODING, 200)
    everything = listing(storage)
    before, rows_before, adherence_before = statuses(engine), counts(engine), figures(engine, pa)

    dry = retention.apply_retention(engine, storage, settings, now=NOW, dry_run=True)
    assert dry.raw == [raw_only, old_auto, old_unclear, old_unusable]
    assert dry.review == [old_auto, old_unclear]
    # Raws of four, review copy and poster of two (stills are not counted in a dry run).
    assert dry.objects == 4 + 2 * 2
    assert listing(storage) == everything
    assert audit_rows(engine, "video.retention_delete") == []
    with engine.connect() as conn:
        assert (
            conn.execute(select(func.count()).where(s.c.raw_deleted_at.isnot(None))).scalar() == 0
        )

    done = retention.apply_retention(engine, storage, settings, now=NOW)
    assert done.raw == dry.raw and done.review == dry.review
    assert done.objects == 4 + 2 * 3  # with the stills now
    gone = {next(k for k in keys_raw_only if k.startswith("raw/"))}
    gone |= keys_old_auto | keys_unclear | keys_unusable
    assert listing(storage) == everything - gone
    assert keys_recent | keys_waiting | keys_processing <= listing(storage)
    assert keys_raw_only - gone <= listing(storage)  # its review copy stays 90 days
    with engine.connect() as conn:
        marks = {
            r.id: (r.raw_deleted_at is not None, r.review_deleted_at is not None, r.erased_at)
            for r in conn.execute(
                select(s.c.id, s.c.raw_deleted_at, s.c.review_deleted_at, s.c.erased_at)
            )
        }
    assert marks[raw_only] == (True, False, None)
    assert marks[old_auto] == marks[old_unclear] == (True, True, None)
    assert marks[old_unusable] == (True, False, None)
    assert sum(raw or rv for raw, rv, _ in marks.values()) == 4
    # Decisions, scores and adherence are untouched; every deletion is in the audit log.
    assert statuses(engine) == before and counts(engine) == rows_before
    assert figures(engine, pa) == adherence_before
    logged = audit_rows(engine, "video.retention_delete")
    assert sorted((r.target, r.detail["what"]) for r in logged) == sorted(
        [(f"submission:{i}", "raw") for i in done.raw]
        + [(f"submission:{i}", "review") for i in done.review]
    )
    assert all(r.actor == "retention" for r in logged)

    again = retention.apply_retention(engine, storage, settings, now=NOW)
    assert (again.raw, again.review, again.objects) == ([], [], 0)
    assert len(audit_rows(engine, "video.retention_delete")) == len(logged)
    assert listing(storage) == everything - gone

    # The review copy of the 10-day-old dose goes once it is 90 days past its decision.
    later = retention.apply_retention(engine, storage, settings, now=NOW + timedelta(days=81))
    assert later.review == [raw_only, old_unusable] and not keys_raw_only & listing(storage)


def test_retention_in_batches_and_a_cut_short_run_is_finished(
    engine: Engine, world: World, store: tuple[Settings, Storage], tmp_path: Path
) -> None:
    settings, storage = store
    subs = [
        add_video(engine, storage, tmp_path, world.patient_a, schema.ACCEPTED, 20)[0]
        for _ in range(3)
    ]
    first = retention.apply_retention(engine, storage, settings, now=NOW, limit=2)
    assert first.raw == subs[:2] and first.more
    # A run that deleted objects but died before recording them: the next one finishes.
    with engine.begin() as conn:
        conn.execute(s.update().where(s.c.id == subs[0]).values(raw_deleted_at=None))
        log = schema.audit_log
        conn.execute(log.delete().where(log.c.target == f"submission:{subs[0]}"))
    second = retention.apply_retention(engine, storage, settings, now=NOW, limit=2)
    assert second.raw == [subs[0], subs[2]] and not second.more
    assert not any(k.startswith("raw/") for k in listing(storage))
    logged = audit_rows(engine, "video.retention_delete")
    assert sorted(r.target for r in logged) == [f"submission:{i}" for i in subs]


def test_raw_bytes_shared_with_a_video_still_in_use_are_kept(
    engine: Engine, world: World, store: tuple[Settings, Storage], tmp_path: Path
) -> None:
    settings, storage = store
    sha = secrets.token_hex(32)
    old, _ = add_video(engine, storage, tmp_path, world.patient_a, schema.ACCEPTED, 30, sha=sha)
    waiting, _ = add_video(
        engine, storage, tmp_path, world.patient_a, schema.SCORING, 0, sha=sha, day=world.today
    )
    report = retention.apply_retention(engine, storage, settings, now=NOW)
    assert report.raw == [old] and report.shared_kept == 1
    assert storage.exists(storage_keys.raw(sha))  # the waiting video still needs these bytes
    with engine.begin() as conn:
        conn.execute(
            s.update()
            .where(s.c.id == waiting)
            .values(status=schema.ACCEPTED, updated_at=NOW - timedelta(days=8))
        )
    report = retention.apply_retention(engine, storage, settings, now=NOW)
    assert report.raw == [waiting] and report.shared_kept == 0
    assert not storage.exists(storage_keys.raw(sha))


def test_erasure_removes_every_object_of_the_patient_and_nothing_else(
    engine: Engine, world: World, store: tuple[Settings, Storage], tmp_path: Path
) -> None:
    settings, storage = store
    pa, pb = world.patient_a, world.patient_b
    shared_sha = secrets.token_hex(32)
    a_subs: dict[str, int] = {}
    a_keys: set[str] = set()
    for name, status, ago in (
        ("accepted", schema.REVIEW, 40),  # decided by a supervisor below
        ("auto", schema.AUTO_ACCEPTED, 2),
        ("waiting", schema.REVIEW, 1),
        ("processing", schema.RECEIVED, 0),
    ):
        a_subs[name], keys = add_video(
            engine,
            storage,
            tmp_path,
            pa,
            status,
            ago,
            transcoded=status != schema.RECEIVED,
            sha=shared_sha if name == "auto" else None,
        )
        a_keys |= keys
    with engine.begin() as conn:
        review_verdicts.record_verdict(conn, world.sup_a, a_subs["accepted"], "accept")
    a_keys.discard(storage_keys.raw(shared_sha))  # patient B sent the same bytes: they are B's too
    b_sub, b_keys = add_video(engine, storage, tmp_path, pb, schema.ACCEPTED, 2, sha=shared_sha)
    _, more_b = add_video(engine, storage, tmp_path, pb, schema.REVIEW, 1)
    b_keys |= more_b
    # An upload of patient A still coming in, and one of patient B.
    with engine.connect() as conn:
        patient_a, patient_b = get_patient(conn, "A-001"), get_patient(conn, "B-001")
    up_a = upload_writes.create(engine, settings, patient_a.id, 1000, None)
    upload_writes.append(engine, settings, patient_a.id, up_a.id, 0, io.BytesIO(b"x" * 100), 100)
    up_b = upload_writes.create(engine, settings, patient_b.id, 1000, None)
    with engine.begin() as conn:
        link_a = tokens.link_token(conn, settings.secret_key, "A-001")
        link_b = tokens.link_token(conn, settings.secret_key, "B-001")
    assert a_keys | b_keys == listing(storage)
    rows_before = counts(engine)
    reviews_before = rows_before["reviews"]
    taken_a, figures_b = figures(engine, pa).taken, figures(engine, pb)

    report = erasure.erase_patient(
        engine, storage, settings, "A-001", actor="admin", reason="patient's written request"
    )
    assert sorted(report.submissions) == sorted(a_subs.values())
    assert report.stopped == [a_subs["processing"]]
    assert report.uploads == 1 and report.shared_kept == 1 and report.links_revoked == 1
    assert report.objects == len(a_keys)
    with engine.connect() as conn:  # no new video arrives by A's link; B's still works
        with pytest.raises(tokens.RevokedToken):
            tokens.resolve(conn, link_a)
        assert tokens.resolve(conn, link_b).code == "B-001"
    assert listing(storage) == b_keys  # nothing of A is left, everything of B is
    assert not uploads.part_path(settings, up_a.id).exists()
    assert uploads.part_path(settings, up_b.id).exists()
    with pytest.raises(uploads.UploadNotFound):
        uploads.get(engine, patient_a.id, up_a.id)

    # The decisions stay; only the video still being processed is stopped, with a reason.
    after = statuses(engine)
    assert after[a_subs["accepted"]] == schema.ACCEPTED
    assert after[a_subs["auto"]] == schema.AUTO_ACCEPTED
    assert after[a_subs["waiting"]] == schema.REVIEW
    assert after[a_subs["processing"]] == schema.REJECTED
    with engine.connect() as conn:
        stopped = pipeline.get_submission(conn, a_subs["processing"])
        erased = conn.execute(
            select(func.count()).where(s.c.patient_id == pa, s.c.erased_at.isnot(None))
        ).scalar_one()
        untouched_b = conn.execute(
            select(func.count()).where(
                s.c.patient_id == pb,
                s.c.erased_at.is_(None),
                s.c.raw_deleted_at.is_(None),
                s.c.review_deleted_at.is_(None),
            )
        ).scalar_one()
    assert stopped is not None and stopped.reason == erasure.ERASED_REASON
    assert erased == 4 and untouched_b == 2
    assert pipeline.start_transcode(engine, a_subs["processing"]) is None  # its job skips
    assert a_subs["processing"] not in [r.id for r in pipeline.in_processing(engine)]
    assert counts(engine) == rows_before and counts(engine)["reviews"] == reviews_before
    assert figures(engine, pa).taken == taken_a and figures(engine, pb) == figures_b
    assert audit_rows(engine, "review.accept")  # the earlier audit log is all still there
    (logged,) = audit_rows(engine, "patient.erase")
    assert logged.actor == "admin" and logged.target == f"patient:{pa}"
    assert logged.detail["reason"] == "patient's written request"
    assert logged.detail["objects"] == len(a_keys) and logged.detail["uploads"] == 1
    assert logged.detail["links_revoked"] == 1

    # A transcode that was already running writes its output after the erasure: the next
    # retention pass removes it.
    put(storage, tmp_path, f"review/{a_subs['processing']}.mp4")
    swept = retention.apply_retention(engine, storage, settings, now=NOW + timedelta(minutes=5))
    assert swept.rechecked == 1 and listing(storage) == b_keys

    # Repeating the erasure is harmless, and is audited too.
    again = erasure.erase_patient(
        engine, storage, settings, "A-001", actor="admin", reason="asked again"
    )
    assert again.objects == 0 and again.stopped == [] and listing(storage) == b_keys
    assert again.links_revoked == 0
    assert len(audit_rows(engine, "patient.erase")) == 2
    assert statuses(engine) == after


def test_erasure_refuses_bad_input(engine: Engine, world: World, settings: Settings) -> None:
    storage = open_storage(settings)
    with pytest.raises(erasure.ErasureError, match="reason"):
        erasure.erase_patient(engine, storage, settings, "A-001", actor="x", reason="  ")
    with pytest.raises(ValueError, match="no patient"):
        erasure.erase_patient(engine, storage, settings, "NOPE", actor="x", reason="asked")
    assert audit_rows(engine, "patient.erase") == []


@pytest.fixture
def client(settings: Settings, engine: Engine, world: World) -> FlaskClient:
    return create_app(settings).test_client()


def test_review_ui_shows_the_deleted_state_and_erases_on_request(
    client: FlaskClient, engine: Engine, world: World, settings: Settings, tmp_path: Path
) -> None:
    storage = open_storage(settings)
    old, _ = add_video(engine, storage, tmp_path, world.patient_a, schema.ACCEPTED, 100)
    recent, recent_keys = add_video(engine, storage, tmp_path, world.patient_a, schema.REVIEW, 1)
    other, other_keys = add_video(engine, storage, tmp_path, world.patient_b, schema.REVIEW, 1)
    retention.apply_retention(engine, storage, settings, now=NOW)
    with engine.connect() as conn:
        deleted_at = as_utc(
            conn.execute(select(s.c.review_deleted_at).where(s.c.id == old)).scalar_one()
        )
    assert isinstance(deleted_at, datetime)
    login(client)
    page = client.get(f"/review/{old}").get_data(as_text=True)
    when = deleted_at.strftime("%Y-%m-%d")
    assert f"deleted under the retention policy on {when}" in page
    assert "<video" not in page and "accepted" in page
    for path in (f"/review/{old}/video", f"/review/{old}/poster.jpg"):
        reply = client.get(path)
        assert reply.status_code == 410
        assert "retention policy" in reply.get_data(as_text=True)
    assert f'src="/review/{recent}/video"' in client.get(f"/review/{recent}").get_data(as_text=True)

    # Erasure from the patient page: a confirmation that asks for the patient's code.
    calendar = client.get(f"/patients/{world.patient_a}").get_data(as_text=True)
    assert f'href="/patients/{world.patient_a}/erase"' in calendar
    confirm = client.get(f"/patients/{world.patient_a}/erase").get_data(as_text=True)
    assert 'id="erase-stored">1<' in confirm  # the recent one: the old one is gone already
    token = form_token(confirm)
    url = f"/patients/{world.patient_a}/erase"
    no_csrf = client.post(url, data={"reason": "asked", "confirm_code": "A-001"})
    wrong_code = client.post(
        url, data={"reason": "asked", "confirm_code": "A-00", "csrf_token": token}
    )
    no_reason = client.post(url, data={"reason": "", "confirm_code": "A-001", "csrf_token": token})
    assert no_csrf.status_code == wrong_code.status_code == no_reason.status_code == 400
    assert "type the patient" in wrong_code.get_data(as_text=True)
    assert recent_keys <= listing(storage)
    other_clinic = create_app(settings).test_client()
    login(other_clinic, "sup-b")
    assert (
        other_clinic.post(
            url, data={"reason": "x", "confirm_code": "A-001", "csrf_token": csrf(other_clinic)}
        ).status_code
        == 404
    )
    analyst = create_app(settings).test_client()
    login(analyst, "analyst")
    assert analyst.get(url).status_code == 403
    assert audit_rows(engine, "patient.erase") == []
    card_url = f"/patients/{world.patient_a}/link"
    assert "<svg" in client.get(card_url).get_data(as_text=True)  # A has a link

    done = client.post(
        url,
        data={"reason": "patient asked by phone", "confirm_code": "A-001", "csrf_token": token},
        follow_redirects=True,
    )
    assert done.status_code == 200 and "Erased the videos of A-001" in done.get_data(as_text=True)
    assert not recent_keys & listing(storage) and other_keys <= listing(storage)
    (logged,) = audit_rows(engine, "patient.erase")
    assert logged.actor == "sup-a" and logged.detail["reason"] == "patient asked by phone"
    for sub in (old, recent):
        page = client.get(f"/review/{sub}").get_data(as_text=True)
        assert "erased at the patient&#39;s request on" in page and "<video" not in page
        assert client.get(f"/review/{sub}/video").status_code == 410
    # The waiting one can still be decided, without its video.
    assert 'id="verdict-form"' in client.get(f"/review/{recent}").get_data(as_text=True)
    assert client.get(f"/review/{other}").status_code == 404  # clinic B's, as before

    # The erasure revoked the upload link: the card says so and offers a new one.
    card = client.get(card_url)
    text = card.get_data(as_text=True)
    assert card.status_code == 200 and 'id="link-revoked"' in text and "<svg" not in text
    assert client.post(card_url, data={}).status_code == 400  # no CSRF token
    assert other_clinic.post(card_url, data={"csrf_token": csrf(other_clinic)}).status_code == 404
    fresh = client.post(card_url, data={"csrf_token": form_token(text)}, follow_redirects=True)
    text = fresh.get_data(as_text=True)
    assert fresh.status_code == 200 and "<svg" in text and 'id="link-revoked"' not in text
    assert "A new upload link for A-001" in text
    (new_token,) = re.findall(r"/p/([A-Za-z0-9_-]{20,})", text)[:1]
    with engine.connect() as conn:
        assert tokens.resolve(conn, new_token).code == "A-001"
    assert [r.actor for r in audit_rows(engine, "patient.link_revoke")] == ["sup-a", "sup-a"]


def vot(data_dir: Path, database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"VOT_DATA_DIR": str(data_dir), "VOT_DATABASE_URL": database_url, "VOT_SECRET_KEY": "t"}
    return run_cli(*args, env=env, timeout=120)


def test_cli_retention_and_erase(
    engine: Engine, world: World, settings: Settings, tmp_path: Path
) -> None:
    storage = open_storage(settings)
    old, old_keys = add_video(engine, storage, tmp_path, world.patient_a, schema.ACCEPTED, 100)
    _, keep = add_video(engine, storage, tmp_path, world.patient_b, schema.ACCEPTED, 1)
    data, url = settings.data_dir, settings.database_url

    dry = vot(data, url, "retention", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("would delete the raw uploads of 1 decided dose(s)")
    assert old_keys | keep == listing(storage)
    real = vot(data, url, "retention", "--json")
    assert real.returncode == 0, real.stderr
    assert '"raw_submission_ids": [\n    ' in real.stdout and f"{old}" in real.stdout
    assert listing(storage) == keep

    erased = vot(data, url, "patient", "erase", "B-001", "--reason", "request", "--by", "nurse")
    assert erased.returncode == 0, erased.stderr
    assert "4 stored object(s)" in erased.stdout and listing(storage) == set()
    (logged,) = audit_rows(engine, "patient.erase")
    assert logged.actor == "cli:nurse"
    for args in (("NOPE", "--reason", "x"), ("A-001", "--reason", " ")):
        bad = vot(data, url, "patient", "erase", *args)
        assert bad.returncode == 1 and bad.stdout == ""
        (line,) = bad.stderr.strip().splitlines()
        assert line.startswith("vot: error: ")


def test_sweeper_applies_retention_and_survives_its_failures(
    engine: Engine,
    world: World,
    settings: Settings,
    redis_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import threading
    import time

    from workers import sweeper as run

    settings = settings.with_(redis_url=redis_url, retention_every_s=1, analytics_every_s=0)
    storage = open_storage(settings)
    _, keys = add_video(engine, storage, tmp_path, world.patient_a, schema.ACCEPTED, 100)
    monkeypatch.setattr(run, "RETENTION_FIRST_AFTER_S", 0.0)
    calls = []
    real = retention.apply_retention

    def failing_once(*args: Any, **kwargs: Any) -> retention.RetentionReport:
        calls.append(kwargs.get("limit"))
        if len(calls) == 1:
            raise OSError("the store is down")
        return real(*args, **kwargs)

    monkeypatch.setattr(retention, "apply_retention", failing_once)
    stop = threading.Event()
    thread = threading.Thread(target=run.sweeper_loop, args=(settings, stop, 0.05), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while keys & listing(storage) and time.monotonic() < deadline:
        time.sleep(0.1)
    stop.set()
    thread.join(5)
    assert not keys & listing(storage)  # deleted on the pass after the failed one
    assert len(calls) >= 2 and calls[0] == run.RETENTION_BATCH
    assert "retention failed" in caplog.text and not thread.is_alive()


def test_sweeper_keeps_the_analysts_snapshot_fresh(
    engine: Engine,
    world: World,
    settings: Settings,
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The export from the snapshot is never older than VOT_ANALYTICS_EVERY_S, even when
    nobody opens the dashboard."""
    import threading
    import time

    from vot.adherence import analytics, export
    from workers import sweeper as run

    settings = settings.with_(redis_url=redis_url, analytics_every_s=3600)
    with engine.connect() as conn:
        assert analytics.computed_at(conn) is None
    monkeypatch.setattr(run, "RETENTION_FIRST_AFTER_S", 0.0)
    monkeypatch.setattr(run, "ANALYTICS_CHECK_EVERY_S", 0.05)
    stop = threading.Event()
    thread = threading.Thread(target=run.sweeper_loop, args=(settings, stop, 0.05), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            if analytics.computed_at(conn) is not None:
                break
        time.sleep(0.1)
    stop.set()
    thread.join(5)
    with engine.connect() as conn:
        first = analytics.computed_at(conn)
        at, stored = export.snapshot_records(conn)
        live = export.records(conn, at)
    assert first is not None and at == first and stored == live and len(stored) == 2

    assert run.analytics_pass(settings) is False  # younger than an hour: left alone
    with engine.begin() as conn:  # an hour and a minute later
        conn.execute(
            schema.adherence_snapshot.update().values(computed_at=first - timedelta(minutes=61))
        )
    assert run.analytics_pass(settings) is True
    with engine.connect() as conn:
        assert analytics.computed_at(conn) > first
    off = load_settings({"VOT_DATA_DIR": str(settings.data_dir), "VOT_ANALYTICS_EVERY_S": "0"})
    assert off.analytics_every_s == 0
    with pytest.raises(ConfigError, match="VOT_ANALYTICS_EVERY_S"):
        load_settings({"VOT_DATA_DIR": str(settings.data_dir), "VOT_ANALYTICS_EVERY_S": "-5"})
