"""Replays in the pipeline: a video that is the same recording as an earlier one (the patient's
own, or another patient's of the same clinic) is never accepted without a person, the supervisor
sees the earlier one beside it, and an erasure takes the fingerprints too.

The fingerprints are the real ones of ../shared/data/clips and of copies made with the real
ffmpeg (re-encoded, trimmed, mirrored): what a patient sending an old video again would send.
"""

from __future__ import annotations

import itertools
import subprocess
from datetime import timedelta

import pytest
from sqlalchemy import select
from test_ledger import add_video
from test_review import PASSWORD
from test_review_ui import csrf, login

from review_ui import create_app
from tests.conftest import CLIPS, no_shared_data
from vot import accounts, schema
from vot.media import ffmpeg_exe
from vot.pipeline import machine, replays
from vot.treatment.course import patient_today
from vot.triage import replay
from vot.triage.bands import Thresholds, triaged

THRESHOLDS = Thresholds("t1", auto_accept=0.9, reject_below=0.1)
COPIES = {
    "reencoded": ([], ["-c:v", "libx264", "-b:v", "600k"]),
    "trimmed": (["-ss", "1.0"], ["-c:v", "libx264", "-crf", "26"]),
    "mirrored": ([], ["-vf", "hflip,scale=-2:360", "-c:v", "libx264", "-crf", "28"]),
}


def clip_names() -> list[str]:
    if not (CLIPS / "labels.csv").is_file():
        no_shared_data("real clips")
    lines = (CLIPS / "labels.csv").read_text().splitlines()[1:]
    return [line.split(",")[0] for line in lines if line.strip()]


@pytest.fixture(scope="module")
def prints(tmp_path_factory) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    """Fingerprints of every labelled clip and of three copies of two of them."""
    from workers.scoring.fingerprint import fingerprint_file
    from workers.scoring.scorer import ScorerOptions

    sampler = ScorerOptions().sampler
    names = clip_names()
    found = {n: fingerprint_file(CLIPS / n, sampler) for n in names}
    folder = tmp_path_factory.mktemp("copies")
    for name in names[:2]:
        for kind, (before, after) in COPIES.items():
            copy = folder / f"{kind}_{name}"
            cmd = [ffmpeg_exe(), "-loglevel", "error", "-y", *before, "-i", str(CLIPS / name)]
            subprocess.run([*cmd, "-an", *after, str(copy)], check=True)
            found[f"{kind}:{name}"] = fingerprint_file(copy, sampler)
    return found


def scored(fingerprint: list[str], confidence: float = 0.97):  # type: ignore[no-untyped-def]
    return triaged(
        {
            "model_version": "test",
            "confidence": confidence,
            "face_visible": True,
            "max_faces": 1,
            "key_moment_s": 1.0,
            "events": [],
            "quality": {},
            "reasons": [],
            "fingerprint": fingerprint,
        },
        THRESHOLDS,
    )


@pytest.fixture
def clinics(engine):  # type: ignore[no-untyped-def]
    """Clinic A with patients A-1, A-2 and A-3 and a supervisor; clinic B with patient B-1."""
    start = patient_today("UTC") - timedelta(days=20)
    with engine.begin() as conn:
        a = accounts.ensure_clinic(conn, "Replay A")
        b = accounts.ensure_clinic(conn, "Replay B")
        accounts.ensure_user(conn, "sup-replay", PASSWORD, "supervisor", a)
        found = {
            code: accounts.add_patient(conn, code, clinic, start)[0].id
            for code, clinic in (("A-1", a), ("A-2", a), ("A-3", a), ("B-1", b))
        }
    return {"start": start, **found}


def send(engine, patient_id: int, day, fingerprint, days: int = 14):  # type: ignore[no-untyped-def]
    """A video of ``patient_id`` for ``day`` scored with ``fingerprint``: (id, status, reasons)."""
    with engine.begin() as conn:
        sub_id = add_video(conn, patient_id, day, schema.SCORING)
    status = machine.record_score(engine, sub_id, scored(fingerprint), 2.0, days)
    with engine.connect() as conn:
        reasons = conn.execute(
            select(schema.scores.c.reasons).where(schema.scores.c.submission_id == sub_id)
        ).scalar_one()
    return sub_id, status, list(reasons)


def test_the_same_recording_sent_again_goes_to_a_person(engine, clinics, prints) -> None:
    first_name, other_name = clip_names()[:2]
    pid, day = clinics["A-1"], clinics["start"]
    first, status, reasons = send(engine, pid, day, prints[first_name])
    assert (status, reasons) == (schema.AUTO_ACCEPTED, [])
    different, status, _ = send(engine, pid, day + timedelta(days=1), prints[other_name])
    assert status == schema.AUTO_ACCEPTED  # a different recording: nothing to see
    for n, kind in enumerate(COPIES, start=2):
        copy = prints[f"{kind}:{first_name}"]
        again, status, reasons = send(engine, pid, day + timedelta(days=n), copy)
        assert (status, reasons[0]) == (schema.REVIEW, "replayed"), kind
        with engine.connect() as conn:
            match = replays.same_as(conn, again)
        assert match is not None and match.same_patient and match.patient_code == "A-1"
        assert match.submission_id in (first, *range(different + 1, again)), kind
    with engine.connect() as conn:
        kept = conn.execute(select(schema.fingerprints.c.submission_id)).scalars().all()
        audit = conn.execute(
            select(schema.audit_log.c.detail).where(
                schema.audit_log.c.action == "submission.triage"
            )
        ).scalars()
        same = [d.get("same_as") for d in audit]
    assert len(kept) == 2 + len(COPIES)
    assert same[:2] == [None, None] and all(same[2:])


def test_another_patients_video_is_found_in_the_clinic_only(engine, clinics, prints) -> None:
    name = clip_names()[0]
    day = clinics["start"] + timedelta(days=19)  # received yesterday: inside the clinic's days
    original, *_ = send(engine, clinics["A-1"], day, prints[name])
    elsewhere = send(engine, clinics["B-1"], day, prints[f"reencoded:{name}"])
    assert elsewhere[1:] == (schema.AUTO_ACCEPTED, [])  # another clinic: not compared
    own_only = send(engine, clinics["A-2"], day, prints[f"trimmed:{name}"], days=0)
    assert own_only[1] == schema.AUTO_ACCEPTED  # VOT_REPLAY_CLINIC_DAYS=0
    sub_id, status, reasons = send(engine, clinics["A-3"], day, prints[f"mirrored:{name}"])
    assert (status, reasons[0]) == (schema.REVIEW, "replayed")
    with engine.connect() as conn:
        match = replays.same_as(conn, sub_id)
    assert match is not None and not match.same_patient
    assert (match.submission_id, match.patient_code) in ((original, "A-1"), (own_only[0], "A-2"))


def test_the_quick_check_never_drops_a_true_match(prints) -> None:
    """:func:`replays.may_match` is a necessary condition of :func:`replay.same_recording`:
    every pair of the clips and copies, and slices of them, as they are and mirrored."""
    pieces = dict(prints)
    for name, hashes in prints.items():
        third = len(hashes) // 3
        pieces[f"middle:{name}"] = hashes[third : 2 * third]
    agreed = matched = 0
    for a, b in itertools.combinations(pieces.values(), 2):
        same = replay.same_recording(a, b)
        quick = replays.may_match(replays._words(replay.parse(a)), replays._words(replay.parse(b)))
        assert quick or not same
        agreed += quick == same
        matched += same
    assert matched >= 2 * len(COPIES)  # the copies and their middles match their originals
    assert agreed / len(pieces) ** 2 > 0.3  # and it is a filter: most different pairs fail it


def test_pack_round_trips_and_refuses_a_bad_hash(prints) -> None:
    hashes = next(iter(prints.values()))
    packed = replays.pack(hashes)
    assert len(packed) == 32 * len(hashes)
    assert [f"{h:064x}" for h in replays.unpack(packed)] == hashes
    with pytest.raises(ValueError, match="hex digits"):
        replays.pack(["abc"])


def test_the_item_page_shows_the_earlier_video_and_rejecting_tells_the_patient(
    settings, engine, clinics, prints
) -> None:
    name = clip_names()[0]
    day = clinics["start"]
    first, *_ = send(engine, clinics["A-1"], day, prints[name])
    again, *_ = send(engine, clinics["A-1"], day + timedelta(days=1), prints[f"trimmed:{name}"])
    client = create_app(settings).test_client()
    login(client, "sup-replay")
    page = client.get(f"/review/{again}").get_data(as_text=True)
    assert 'id="replayed"' in page and f'href="/review/{first}"' in page
    assert "this patient&#39;s" in page or "this patient's" in page
    assert 'id="replayed"' not in client.get(f"/review/{first}").get_data(as_text=True)
    queue = client.get("/review?reason=replayed").get_data(as_text=True)
    assert f"/review/{again}" in queue and f'/review/{first}"' not in queue
    reply = client.post(
        f"/review/{again}/verdict",
        data={"verdict": "reject", "reason": "video sent before", "csrf_token": csrf(client)},
    )
    assert reply.status_code == 302
    with engine.connect() as conn:
        status = conn.execute(
            select(schema.submissions.c.status).where(schema.submissions.c.id == again)
        ).scalar_one()
        told = (
            conn.execute(
                select(schema.messages.c.body).where(schema.messages.c.patient_id == clinics["A-1"])
            )
            .scalars()
            .all()
        )
    assert status == schema.REJECTED and told == ["video sent before"]


def test_erasing_a_patient_deletes_their_fingerprints(settings, engine, clinics, prints) -> None:
    from vot.retention.erasure import erase_patient
    from vot.storage import open_storage

    name = clip_names()[0]
    send(engine, clinics["A-1"], clinics["start"], prints[name])
    send(engine, clinics["A-2"], clinics["start"], prints[name])
    erase_patient(
        engine, open_storage(settings), settings, "A-1", actor="admin", reason="patient asked"
    )
    with engine.connect() as conn:
        left = conn.execute(select(schema.fingerprints.c.patient_id)).scalars().all()
    assert left == [clinics["A-2"]]


def test_bad_replay_setting_is_refused() -> None:
    from vot.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match="VOT_REPLAY_CLINIC_DAYS must be at least 0"):
        load_settings({"VOT_REPLAY_CLINIC_DAYS": "-1"})
    with pytest.raises(ConfigError, match="whole number"):
        load_settings({"VOT_REPLAY_CLINIC_DAYS": "two weeks"})
