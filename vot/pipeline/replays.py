"""Replays: a video that is the same recording as one sent before (the patient's own, or another
patient's of the same clinic), re-encoded, trimmed, resized or mirrored.

The score job stores each video's perceptual fingerprint (:mod:`vot.triage.replay`) and, before
the video is placed in its band, looks for an earlier video it repeats: every earlier video of
the same patient (the newest :data:`PATIENT_LIMIT`), and the clinic's other patients' videos of
the last ``VOT_REPLAY_CLINIC_DAYS`` days (the newest :data:`CLINIC_LIMIT`). A match adds the
reason ``replayed``, which stops the video being accepted without a person: a supervisor sees
both videos and decides.

The comparison is done in two steps, so that a check costs well under a second at a busy
clinic (``bench/bench_replay.py``):

1. a necessary condition, in numpy: two fingerprints can only be the same recording when, along
   some alignment, at least half the aligned hashes are within
   :data:`~vot.triage.replay.MAX_MEDIAN_BITS` bits. For the clinic's videos a sample of the new
   video's hashes is compared first (:func:`_sample_hits`);
2. :func:`vot.triage.replay.same_recording` decides on the few that pass.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
from sqlalchemy import Connection, select

from vot import schema
from vot.db import as_utc, utcnow
from vot.triage import replay

PATIENT_LIMIT = 400
CLINIC_DAYS = 14  # VOT_REPLAY_CLINIC_DAYS
CLINIC_LIMIT = 3000
SAMPLE = 16  # hashes of the new video compared with the clinic's videos first
SAMPLE_SLACK_BITS = 8  # a sampled hash counts as near a little above the match threshold
SAMPLE_HITS = 3  # sampled hashes (or their mirror images) that must find a near hash
REASON = "replayed"
WORDS = replay.BITS // 16  # a hash as 16-bit words
_POPCOUNT = np.array([bin(i).count("1") for i in range(1 << 16)], dtype=np.uint8)

fp, subs, p = schema.fingerprints, schema.submissions, schema.patients
Candidate = tuple[int, int, date, bytes]  # submission, patient, dose date, packed fingerprint


@dataclass(frozen=True)
class Match:
    """An earlier video the new one repeats."""

    submission_id: int
    patient_id: int
    dose_date: date
    same_patient: bool
    patient_code: str = ""  # for the supervisor's item page


def _words(hashes: Sequence[int]) -> np.ndarray:
    """Hashes as an (n, WORDS) array of 16-bit words, most significant first."""
    return _blob_words(b"".join(h.to_bytes(replay.BITS // 8, "big") for h in hashes))


def _blob_words(blob: bytes) -> np.ndarray:
    """A stored fingerprint (:func:`pack`) as an (n, WORDS) array of 16-bit words."""
    return np.frombuffer(blob, dtype=">u2").astype(np.uint16).reshape(-1, WORDS)


def pack(fingerprint: Sequence[str]) -> bytes:
    """A fingerprint as stored: each hash's bytes, one after the other.

    Raises:
        ValueError: a hash is malformed.
    """
    return b"".join(h.to_bytes(replay.BITS // 8, "big") for h in replay.parse(fingerprint))


def unpack(blob: bytes) -> list[int]:
    size = replay.BITS // 8
    return [int.from_bytes(blob[i : i + size], "big") for i in range(0, len(blob), size)]


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamming distances of every hash of ``a`` to every hash of ``b`` (len(a), len(b))."""
    out = np.zeros((len(a), len(b)), dtype=np.uint16)
    for col in range(WORDS):
        out += _POPCOUNT[np.bitwise_xor.outer(a[:, col], b[:, col])]
    return out


def may_match(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether ``a`` and ``b`` (word arrays) pass the necessary condition of a match: on some
    alignment that overlaps :data:`~vot.triage.replay.MIN_OVERLAP` of the shorter, at least
    half the aligned hashes are within the match threshold, as they are or mirrored."""
    if not len(a) or not len(b):
        return False
    need = max(1, math.ceil(replay.MIN_OVERLAP * min(len(a), len(b))))
    rows, cols = np.indices((len(a), len(b)))
    diagonal = (rows - cols).ravel() + len(b) - 1
    lengths = np.bincount(diagonal, minlength=len(a) + len(b) - 1)
    for other in (b, _mirror(b)):
        near = (_distances(a, other) <= replay.MAX_MEDIAN_BITS).ravel()
        counts = np.bincount(diagonal, weights=near, minlength=len(a) + len(b) - 1)
        if np.any((lengths >= need) & (counts * 2 >= lengths)):
            return True
    return False


_MIRROR = _words([replay.mirrored([0])[0]])[0]


def _mirror(words: np.ndarray) -> np.ndarray:
    return np.bitwise_xor(words, _MIRROR)


def _candidates(
    conn: Connection, sub_id: int, patient_id: int, clinic_id: int, since: datetime, clinic: bool
) -> tuple[list[Candidate], list[Candidate]]:
    """The patient's own earlier videos, and the clinic's others (none when not ``clinic``)."""
    columns = (fp.c.submission_id, subs.c.patient_id, subs.c.dose_date, fp.c.hashes)
    base = select(*columns).select_from(fp.join(subs, subs.c.id == fp.c.submission_id))
    own = conn.execute(
        base.where(fp.c.patient_id == patient_id, fp.c.submission_id != sub_id)
        .order_by(fp.c.submission_id.desc())
        .limit(PATIENT_LIMIT)
    ).all()
    if not clinic:
        return [tuple(r) for r in own], []  # type: ignore[misc]
    others = conn.execute(
        base.where(
            fp.c.clinic_id == clinic_id,
            fp.c.patient_id != patient_id,
            fp.c.received_at >= since,
        )
        .order_by(fp.c.submission_id.desc())
        .limit(CLINIC_LIMIT)
    ).all()
    return [tuple(r) for r in own], [tuple(r) for r in others]  # type: ignore[misc]


def _sampled(new: np.ndarray, others: list[Candidate]) -> list[Candidate]:
    """The clinic's other videos on which at least :data:`SAMPLE_HITS` of a sample of the new
    video's hashes (as they are or mirrored) land within the match threshold plus
    :data:`SAMPLE_SLACK_BITS`."""
    if not others:
        return []
    words = [_blob_words(c[3]) for c in others]
    pool = np.concatenate(words)
    picked = new[np.linspace(0, len(new) - 1, min(SAMPLE, len(new))).round().astype(int)]
    limit = replay.MAX_MEDIAN_BITS + SAMPLE_SLACK_BITS
    near = (_distances(picked, pool) <= limit) | (_distances(_mirror(picked), pool) <= limit)
    bounds = np.cumsum([0, *map(len, words)])
    return [
        candidate
        for lo, hi, candidate in zip(bounds, bounds[1:], others, strict=False)
        if hi > lo and int(near[:, lo:hi].any(axis=1).sum()) >= SAMPLE_HITS
    ]


def find(
    conn: Connection,
    sub_id: int,
    fingerprint: Sequence[str],
    clinic_days: int,
    now: datetime | None = None,
) -> Match | None:
    """The newest earlier video that ``fingerprint`` (of submission ``sub_id``) repeats: the
    patient's own first, then the clinic's others of the last ``clinic_days`` days.

    Raises:
        ValueError: a hash of ``fingerprint`` is malformed.
    """
    hashes = replay.parse(fingerprint)
    if not hashes:
        return None
    patient_id, clinic_id = conn.execute(
        select(subs.c.patient_id, p.c.clinic_id)
        .select_from(subs.join(p, p.c.id == subs.c.patient_id))
        .where(subs.c.id == sub_id)
    ).one()
    since = (now or utcnow()) - timedelta(days=clinic_days)
    own, others = _candidates(conn, sub_id, patient_id, clinic_id, since, clinic_days > 0)
    new = _words(hashes)
    for candidate in (*own, *_sampled(new, others)):
        if may_match(new, _blob_words(candidate[3])) and replay.same_recording(
            fingerprint, [f"{h:0{replay.HEX_DIGITS}x}" for h in unpack(candidate[3])]
        ):
            return Match(candidate[0], candidate[1], candidate[2], candidate[1] == patient_id)
    return None


def store(conn: Connection, sub_id: int, fingerprint: Sequence[str], same_as: int | None) -> None:
    """Keep a video's fingerprint (once: a re-run of the score job keeps the first)."""
    row = conn.execute(
        select(subs.c.patient_id, subs.c.received_at, p.c.clinic_id)
        .select_from(subs.join(p, p.c.id == subs.c.patient_id))
        .where(subs.c.id == sub_id)
    ).one()
    if conn.execute(select(fp.c.submission_id).where(fp.c.submission_id == sub_id)).first():
        return
    conn.execute(
        fp.insert().values(
            submission_id=sub_id,
            patient_id=row.patient_id,
            clinic_id=row.clinic_id,
            received_at=as_utc(row.received_at),
            hashes=pack(fingerprint),
            same_as=same_as,
        )
    )


def same_as(conn: Connection, sub_id: int) -> Match | None:
    """The earlier video a submission was found to repeat, if any (for the item page)."""
    row = conn.execute(
        select(
            fp.c.same_as,
            subs.c.patient_id,
            subs.c.dose_date,
            p.c.code,
            fp.c.patient_id.label("own"),
        )
        .select_from(fp.join(subs, subs.c.id == fp.c.same_as).join(p, p.c.id == subs.c.patient_id))
        .where(fp.c.submission_id == sub_id)
    ).first()
    if row is None:
        return None
    return Match(row.same_as, row.patient_id, row.dose_date, row.patient_id == row.own, row.code)
