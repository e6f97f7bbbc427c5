"""Scorer speed and confidence on the real clips: ``python -m bench.bench_scorer [--json]``.

Scores every clip of ``../shared/data/clips/labels.csv`` (or ``--labels``) once with one
:class:`workers.scoring.scorer.Scorer` (graphs loaded once, as in a worker) and prints one JSON
object: per clip its wall time, decode and detect time, frames analysed, frames analysed per second,
confidence and label; then totals, ROC AUC and the margin between the lowest positive and the
highest negative. Timings are reported, never asserted.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

from vot.config import REPO_ROOT

LABELS = REPO_ROOT.parent / "shared" / "data" / "clips" / "labels.csv"


def bench(labels: Path) -> dict[str, object]:
    """Score every clip of ``labels`` and collect the figures."""
    from workers.scoring.evaluation import roc_auc
    from workers.scoring.scorer import MODEL_VERSION, Scorer, ScorerOptions

    with labels.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    loading = time.monotonic()
    scorer = Scorer()
    load_s = time.monotonic() - loading
    clips = []
    try:
        for row in rows:
            started = time.monotonic()
            result = scorer.score(labels.parent / row["path"])
            wall = time.monotonic() - started
            frames = int(result.quality["frames_analysed"])
            clips.append(
                {
                    "clip": row["path"],
                    "ingestion": int(row["ingestion"]),
                    "confidence": result.confidence,
                    "key_moment_s": result.key_moment_s,
                    "duration_s": result.quality["duration_s"],
                    "frames_analysed": frames,
                    "wall_s": round(wall, 3),
                    "decode_s": result.timings["decode_s"],
                    "detect_s": result.timings["detect_s"],
                    "frames_per_s": round(frames / wall, 1) if wall > 0 else None,
                }
            )
    finally:
        scorer.close()
    wall = sum(c["wall_s"] for c in clips)
    frames = sum(c["frames_analysed"] for c in clips)
    pos = [c["confidence"] for c in clips if c["ingestion"]]
    neg = [c["confidence"] for c in clips if not c["ingestion"]]
    options = ScorerOptions()
    return {
        "model_version": MODEL_VERSION,
        "sample_fps": options.sampler.fps,
        "max_side": options.sampler.max_side,
        "cpu_count": os.cpu_count(),
        "load_s": round(load_s, 3),
        "clips": clips,
        "total": {
            "clips": len(clips),
            "video_s": round(sum(float(c["duration_s"]) for c in clips), 2),
            "wall_s": round(wall, 3),
            "frames_analysed": frames,
            "frames_per_s": round(frames / wall, 1) if wall > 0 else None,
        },
        "roc_auc": roc_auc([c["confidence"] for c in clips], [c["ingestion"] for c in clips]),
        "margin": round(min(pos) - max(neg), 4) if pos and neg else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the JSON object on one line")
    parser.add_argument("--labels", type=Path, default=LABELS, help="labels file (labels.csv)")
    args = parser.parse_args(argv)
    os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ start-up chatter
    if not args.labels.is_file():
        print(f"bench: no labels file {args.labels} (../shared/data is absent)", file=sys.stderr)
        return 1
    print(json.dumps(bench(args.labels), indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
