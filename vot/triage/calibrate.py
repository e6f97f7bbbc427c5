"""Recalibrate the triage bands from a programme's own supervisors' verdicts.

Each deployment sees different phones, rooms and people, so the bands shipped in ``models/`` are
a starting point. Given the scorer's confidence and the supervisor's final verdict for reviewed
videos, :func:`choose_bands` picks:

* ``auto_accept``: the lowest confidence above which supervisors accepted at least
  ``target_precision`` of the videos (so auto-accepting them would rarely be wrong);
* ``reject_below``: the highest confidence below which at most ``1 - target_precision`` of the
  videos were accepted (so the reject band rarely holds a real dose).

A band needs ``min_reviewed`` verdicts behind it; otherwise the current edge is kept and the
summary says why.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, and_, func, select

from vot import schema
from vot.triage.bands import Thresholds


@dataclass(frozen=True)
class Calibration:
    thresholds: Thresholds
    reviewed: int
    accepted: int
    auto_accept_precision: float | None
    auto_accept_count: int
    reject_accepted_share: float | None
    reject_count: int
    notes: list[str]


def summary(result: Calibration, current: Thresholds) -> dict[str, object]:
    """What ``vot calibrate`` prints: the new bands and the figures they rest on."""
    return {
        "version": result.thresholds.version,
        "from_version": current.version,
        "auto_accept": result.thresholds.auto_accept,
        "reject_below": result.thresholds.reject_below,
        "reviewed": result.reviewed,
        "accepted": result.accepted,
        "auto_accept_precision": result.auto_accept_precision,
        "auto_accept_count": result.auto_accept_count,
        "reject_accepted_share": result.reject_accepted_share,
        "reject_count": result.reject_count,
        "notes": result.notes,
    }


def choose_bands(
    verdicts: Sequence[tuple[float, bool]],
    current: Thresholds,
    version: str,
    target_precision: float = 0.98,
    min_reviewed: int = 30,
) -> Calibration:
    """Bands from (confidence, accepted) pairs; see the module docstring."""
    if not 0.5 < target_precision < 1.0:
        raise ValueError("target precision must be between 0.5 and 1")
    ranked = sorted(verdicts, key=lambda v: -v[0])
    notes: list[str] = []
    auto, auto_prec, auto_n = current.auto_accept, None, 0
    taken = 0
    for i, (conf, accepted) in enumerate(ranked, start=1):
        taken += accepted
        # Only an edge between two different confidences can separate videos.
        boundary = i == len(ranked) or ranked[i][0] < conf
        if boundary and i >= min_reviewed and taken / i >= target_precision:
            auto, auto_prec, auto_n = conf, taken / i, i
    if auto_n == 0:
        notes.append(
            f"auto_accept kept at {current.auto_accept}: no confidence has "
            f"{min_reviewed}+ verdicts above it with precision {target_precision}"
        )
    ascending = ranked[::-1]
    reject, rej_share, rej_n = current.reject_below, None, 0
    missed = 0
    for i, (conf, accepted) in enumerate(ascending, start=1):
        missed += accepted
        boundary = i == len(ascending) or ascending[i][0] > conf
        if boundary and i >= min_reviewed and missed / i <= 1 - target_precision:
            # Below the next higher confidence: every video up to this one is in the band.
            nxt = ascending[i][0] if i < len(ascending) else 1.0
            reject, rej_share, rej_n = (conf + nxt) / 2, missed / i, i
    if rej_n == 0:
        notes.append(
            f"reject_below kept at {current.reject_below}: no confidence has "
            f"{min_reviewed}+ verdicts below it with at most "
            f"{1 - target_precision:.0%} accepted"
        )
    reject = min(reject, auto)
    return Calibration(
        thresholds=Thresholds(version, auto_accept=round(auto, 4), reject_below=round(reject, 4)),
        reviewed=len(ranked),
        accepted=sum(a for _c, a in ranked),
        auto_accept_precision=auto_prec,
        auto_accept_count=auto_n,
        reject_accepted_share=rej_share,
        reject_count=rej_n,
        notes=notes,
    )


def final_verdicts(conn: Connection, model_version: str | None = None) -> list[tuple[float, bool]]:
    """(confidence, accepted) of every scored video with a standing supervisor verdict."""
    r, sc = schema.reviews, schema.scores
    latest = (
        select(r.c.submission_id, func.max(r.c.id).label("id"))
        .where(r.c.undone_at.is_(None), r.c.verdict.in_(("accept", "reject", "unclear")))
        .group_by(r.c.submission_id)
        .subquery()
    )
    query = (
        select(sc.c.confidence, r.c.verdict)
        .join(latest, latest.c.submission_id == sc.c.submission_id)
        .join(r, and_(r.c.id == latest.c.id))
    )
    if model_version:
        query = query.where(sc.c.model_version == model_version)
    return [(float(conf), verdict == "accept") for conf, verdict in conn.execute(query)]


def write(calibration: Calibration, models_dir: Path, **source: Any) -> Path:
    """Write the bands as ``models_dir/thresholds/<version>.json``; refuses to overwrite."""
    t = calibration.thresholds
    path = Path(models_dir) / "thresholds" / f"{t.version}.json"
    if path.exists():
        raise FileExistsError(f"{path} exists; choose another --version")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "version": t.version,
                "auto_accept": t.auto_accept,
                "reject_below": t.reject_below,
                "notes": (
                    f"Calibrated {datetime.now(UTC):%Y-%m-%d} from {calibration.reviewed} "
                    f"supervisor verdicts ({calibration.accepted} accepted). "
                    + " ".join(calibration.notes)
                ),
                "source": source,
            },
            indent=2,
        )
        + "\n"
    )
    return path
