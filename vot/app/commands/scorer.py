"""Commands of the scorer: score one file, evaluate on labelled clips, recalibrate the bands."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vot.app.commands.common import Subparsers, add, positive, quiet_native_logs, upgraded
from vot.config import Settings


def cmd_score(settings: Settings, args: argparse.Namespace) -> int:
    quiet_native_logs()
    from vot.media import probe

    probe(Path(args.file), settings.ffmpeg)  # fail fast, before loading the models
    from workers.scoring.step import score_file

    result = score_file(Path(args.file), settings).to_dict()
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"confidence {result['confidence']:.3f} -> {result['decision']}")
    for event in result["events"]:
        print(
            f"  {event['type']:<14} {event['start_s']:6.2f}-{event['end_s']:6.2f} s  "
            f"score {event['score']:.2f}"
        )
    print(f"  reasons: {', '.join(result['reasons']) or '-'}")
    return 0


def cmd_eval(settings: Settings, args: argparse.Namespace) -> int:
    quiet_native_logs()
    from vot.triage.bands import decide_dict, load_thresholds
    from workers.scoring.evaluation import evaluate
    from workers.scoring.scorer import Scorer

    labels = Path(args.labels)
    if not labels.is_file():
        raise LookupError(f"no labels file {labels}")
    thresholds = load_thresholds(settings.models_dir, settings.threshold_version)
    with Scorer() as scorer:
        summary = evaluate(
            labels,
            Path(args.out),
            scorer,
            lambda result: decide_dict(result, thresholds).decision,
            review_seconds=args.review_seconds,
        )
    summary["cross_validation"].pop("per_clip", None)  # in report.json
    summary.pop("per_clip", None)  # every clip's score and reasons are in the report files
    print(json.dumps(summary, indent=2, default=str))
    return 0


def cmd_calibrate(settings: Settings, args: argparse.Namespace) -> int:
    from vot.triage import calibrate
    from vot.triage.bands import load_thresholds

    current = load_thresholds(settings.models_dir, settings.threshold_version)
    with upgraded(settings).connect() as conn:
        verdicts = calibrate.final_verdicts(conn, args.model_version)
    result = calibrate.choose_bands(
        verdicts, current, args.version, args.target_precision, args.min_reviewed
    )
    summary = calibrate.summary(result, current)
    if not args.dry_run:
        path = calibrate.write(
            result,
            settings.models_dir,
            from_version=current.version,
            target_precision=args.target_precision,
        )
        summary["written"] = str(path)
        summary["use_with"] = f"VOT_THRESHOLD_VERSION={args.version}"
    print(json.dumps(summary, indent=2))
    return 0


def register(sub: Subparsers) -> None:
    p = add(sub, "score", cmd_score, "score one video without the database or queue")
    p.add_argument("file")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p = add(
        sub, "eval", cmd_eval, "score a labelled set of clips and report how well it ranks them"
    )
    p.add_argument("labels", help="labels CSV: path,ingestion,face_visible,... (paths relative)")
    p.add_argument("--out", default="eval-report", help="folder for report.json, clips.csv, PNG")
    p.add_argument(
        "--review-seconds",
        type=float,
        default=10.0,
        help="a supervisor's seconds per reviewed video, for the workload figure (default 10)",
    )
    p = add(sub, "calibrate", cmd_calibrate, "derive new triage bands from supervisors' verdicts")
    p.add_argument("--version", required=True, help="name of the new thresholds version")
    p.add_argument("--target-precision", type=float, default=0.98)
    p.add_argument("--min-reviewed", type=positive, default=30)
    p.add_argument("--model-version", help="only verdicts on scores of this model")
    p.add_argument("--dry-run", action="store_true", help="print, do not write the file")
