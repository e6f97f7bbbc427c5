"""What looking for a replay costs the score job: ``python -m bench.bench_replay [--json]``.

Fills an SQLite database with one busy clinic's
fingerprints: the patient's own :data:`~vot.pipeline.replays.PATIENT_LIMIT` earlier videos and
``--clinic`` videos of other patients, all made from the real clips' fingerprints with random
bits flipped (``--noise`` bits a hash: different recordings of the same people in the same
rooms, the hardest case for the quick checks, since none of them matches but all are close).
Then it times, in one run:

* ``find_new_ms``: :func:`vot.pipeline.replays.find` for a new recording (no match: every
  candidate is looked at);
* ``find_replay_ms``: the same for a copy of one of the patient's earlier videos;
* ``naive_new_ms``: :func:`vot.triage.replay.same_recording` against every candidate, what the
  quick checks save (``naive_over_find``);

with how many candidates passed each quick check. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from vot import accounts, schema
from vot.config import REPO_ROOT
from vot.db import make_engine
from vot.migrations import upgrade
from vot.pipeline import replays
from vot.triage import replay

CLIPS = REPO_ROOT.parent / "shared" / "data" / "clips"
NOW = datetime(2026, 6, 30, 12, tzinfo=UTC)


def clip_fingerprints() -> list[list[int]]:
    """The hashes of every labelled clip (MediaPipe is not needed: decoding only)."""
    from workers.scoring.fingerprint import fingerprint_file
    from workers.scoring.scorer import ScorerOptions

    lines = (CLIPS / "labels.csv").read_text().splitlines()[1:]
    names = [line.split(",")[0] for line in lines if line.strip()]
    sampler = ScorerOptions().sampler
    return [replay.parse(fingerprint_file(CLIPS / n, sampler)) for n in names]


def noisy(hashes: list[int], bits: int, rng: random.Random) -> list[int]:
    """``hashes`` with ``bits`` random bits of each flipped (the DC bit stays 0)."""
    out = []
    for h in hashes:
        for bit in rng.sample(range(replay.BITS - 1), bits):
            h ^= 1 << bit
        out.append(h)
    return out


def hexed(hashes: list[int]) -> list[str]:
    return [f"{h:0{replay.HEX_DIGITS}x}" for h in hashes]


def fill(engine: Any, sources: list[list[int]], clinic: int, noise: int) -> tuple[int, list[int]]:
    """The patient's id and one of their stored fingerprints' hashes."""
    rng = random.Random(7)
    with engine.begin() as conn:
        clinic_id = accounts.ensure_clinic(conn, "Busy clinic")
        patients = [
            accounts.add_patient(conn, f"R-{i}", clinic_id, NOW.date() - timedelta(days=170))[0].id
            for i in range(60)
        ]
        own = patients[0]
        kept: list[int] = []
        rows = [(own, replays.PATIENT_LIMIT)] + [(None, clinic)]
        for who, count in rows:
            for n in range(count):
                patient = who or patients[1 + n % (len(patients) - 1)]
                hashes = noisy(rng.choice(sources), noise, rng)
                kept = kept or hashes
                received = NOW - timedelta(minutes=n * (5 if who else 6))
                sub = conn.execute(
                    schema.submissions.insert().values(
                        patient_id=patient,
                        dose_date=received.date(),
                        received_at=received,
                        content_sha256=f"{patient:08x}{n:056x}",
                        size_bytes=1,
                        raw_key="raw/x",
                        status=schema.ACCEPTED,
                        attempts=1,
                        updated_at=received,
                    )
                ).inserted_primary_key[0]
                replays.store(conn, int(sub), hexed(hashes), None)
    return own, kept


def timed(fn: Any, repeat: int = 3) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return best * 1000, result


def survivors(conn: Any, sub_id: int, hashes: list[int]) -> dict[str, int]:
    """How many candidates each quick check let through to the full comparison."""
    patient_id, clinic_id = conn.execute(
        select(schema.submissions.c.patient_id, schema.patients.c.clinic_id)
        .join(schema.patients, schema.patients.c.id == schema.submissions.c.patient_id)
        .where(schema.submissions.c.id == sub_id)
    ).one()
    own, others = replays._candidates(
        conn, sub_id, patient_id, clinic_id, NOW - timedelta(days=replays.CLINIC_DAYS), True
    )
    new = replays._words(hashes)
    sampled = replays._sampled(new, others)
    full = [c for c in (*own, *sampled) if replays.may_match(new, replays._blob_words(c[3]))]
    return {
        "candidates": len(own) + len(others),
        "sample_passed": len(sampled),
        "quick_passed": len(full),
    }


def measure(url: str, clinic: int, noise: int) -> dict[str, Any]:
    sources = clip_fingerprints()
    engine = make_engine(url)
    upgrade(engine)
    own, kept = fill(engine, sources, clinic, noise)
    rng = random.Random(11)
    new = hexed(noisy(sources[0], noise + 4, rng))
    copy = hexed(noisy(kept, 4, rng))
    with engine.begin() as conn:
        probe = conn.execute(
            select(schema.fingerprints.c.submission_id)
            .where(schema.fingerprints.c.patient_id == own)
            .order_by(schema.fingerprints.c.submission_id.desc())
        ).first()[0]
    got: dict[str, Any] = {"database": engine.dialect.name, "noise_bits": noise}
    with engine.connect() as conn:
        # The probe stands for the new video: compared with everything but itself.
        find_new, none = timed(lambda: replays.find(conn, probe, new, replays.CLINIC_DAYS, NOW))
        find_copy, match = timed(lambda: replays.find(conn, probe, copy, replays.CLINIC_DAYS, NOW))
        got.update(survivors(conn, probe, replay.parse(new)))
        stored = (
            conn.execute(
                select(schema.fingerprints.c.hashes).where(
                    schema.fingerprints.c.submission_id != probe
                )
            )
            .scalars()
            .all()
        )
    naive, found = timed(
        lambda: any(replay.same_recording(new, hexed(replays.unpack(s))) for s in stored), 1
    )
    got.update(
        find_new_ms=round(find_new, 1),
        find_new_matched=none is not None,
        find_replay_ms=round(find_copy, 1),
        find_replay_matched=match is not None,
        naive_new_ms=round(naive, 1),
        naive_new_matched=found,
        naive_over_find=round(naive / find_new, 1),
        hashes_per_video=round(sum(map(len, sources)) / len(sources), 1),
    )
    return got


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clinic", type=int, default=replays.CLINIC_LIMIT)
    parser.add_argument("--noise", type=int, default=22, help="bits flipped a hash (default 22)")
    parser.add_argument("--json", action="store_true", help="JSON only (the default prints it too)")
    args = parser.parse_args(argv)
    if not (CLIPS / "labels.csv").is_file():
        print(f"bench_replay: needs the real clips in {CLIPS}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="vot-bench-replay-") as tmp:
        print(json.dumps(measure(f"sqlite:///{Path(tmp) / 'replay.db'}", args.clinic, args.noise)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
