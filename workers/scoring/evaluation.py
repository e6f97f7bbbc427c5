"""Evaluate the scorer and a triage rule on a labelled set of clips.

The labels file has the columns of ``../shared/data/clips/labels.csv``: ``path`` (relative to
the labels file), ``ingestion`` (1: something is brought to the mouth), ``face_visible`` and
``note``. :func:`evaluate` scores every clip once and reports how well the confidence ranks
them (ROC AUC) and what the triage bands would do with them.
"""

from __future__ import annotations

import csv
import json
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from vot.media import MediaError
from workers.scoring import fit

logger = logging.getLogger(__name__)

BANDS = ("auto_accept", "review", "reject")


class _Scores(Protocol):
    def score(self, path: Path) -> Any: ...


def roc_auc(scores: Sequence[float], labels: Sequence[int]) -> float | None:
    """Area under the ROC curve: the chance a random positive outranks a random negative.

    Ties count one half (the Mann-Whitney statistic). Returns None without both classes.
    """
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    if not pos or not neg:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def _score_one(scorer: _Scores, path: Path) -> tuple[dict[str, Any], str | None]:
    """The scorer's result dict, or a confidence-0 stand-in with the error as its reason."""
    try:
        result = scorer.score(path)
    except MediaError as exc:
        logger.warning("clip %s is unusable: %s", path.name, exc)
        message = str(exc)
        stand_in = {
            "confidence": 0.0,
            "face_visible": False,
            "max_faces": 0,
            "events": [],
            "quality": {},
            "reasons": [f"unusable: {message}"],
            "key_moment_s": None,
            "cues": {},
        }
        return stand_in, message
    return (result.to_dict() if hasattr(result, "to_dict") else dict(result)), None


def _band_stats(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    positives = sum(r["ingestion"] for r in rows)
    stats = {}
    for band in sorted(set(BANDS) | {r["decision"] for r in rows}, key=_band_order):
        members = [r for r in rows if r["decision"] == band]
        hits = sum(r["ingestion"] for r in members)
        stats[band] = {
            "clips": len(members),
            "ingestion": hits,
            "precision": round(hits / len(members), 4) if members else None,
            "recall": round(hits / positives, 4) if positives else None,
        }
    return stats


def _band_order(band: str) -> tuple[int, str]:
    return (BANDS.index(band) if band in BANDS else len(BANDS), band)


def evaluate(
    labels_csv: Path,
    out_dir: Path,
    scorer: _Scores,
    decide: Callable[[dict[str, Any]], str],
    review_seconds: float = 10.0,
) -> dict[str, Any]:
    """Score every clip of ``labels_csv``, write a report to ``out_dir`` and return its summary.

    Args:
        labels_csv: labels file (``path,ingestion,face_visible,note``; paths relative to it).
        out_dir: created if needed; receives ``report.json``, ``clips.csv`` and
            ``confidence.png`` (confidence of every clip by label).
        scorer: anything with ``score(path)`` returning a result with ``to_dict()`` (or a
            dict); a :class:`vot.media.MediaError` counts as confidence 0 with the error as
            its reason.
        decide: band of a result dict: ``auto_accept``, ``review`` or ``reject``.
        review_seconds: a supervisor's time per reviewed video, for ``workload``.

    Returns:
        ``clips``, ``positives``, ``roc_auc`` (in-sample: the shipped weights were fitted on
        these clips), ``margin`` (lowest positive minus highest negative confidence),
        ``bands`` (per band: clips, ingestion, precision, recall), ``auto_accept_share``,
        ``no_face_auto_accepted`` (paths), ``cross_validation`` (see
        :func:`cross_validate`), ``workload`` (see :func:`workload`), ``seconds`` and
        ``per_clip``.

    Raises:
        ValueError: the labels file has no rows or misses a column.
    """
    labels_csv = Path(labels_csv)
    out_dir = Path(out_dir)
    started = time.monotonic()
    scored = [_row(label, labels_csv.parent, scorer, decide) for label in read_labels(labels_csv)]
    rows = [row for row, _ in scored]
    summary = _summary(rows, str(labels_csv))
    summary["cross_validation"] = cross_validate(scored, decide)
    summary["workload"] = workload(rows, review_seconds)
    summary["seconds"] = round(time.monotonic() - started, 2)
    summary["per_clip"] = rows
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps(summary, indent=2) + "\n")
    _write_clips_csv(out_dir / "clips.csv", rows)
    _plot(out_dir / "confidence.png", rows)
    logger.info("evaluated %s clips: AUC %s", len(rows), summary["roc_auc"])
    return summary


def read_labels(labels_csv: Path) -> list[dict[str, str]]:
    """The rows of a labels file.

    Raises:
        ValueError: the file has no rows or misses a column.
    """
    with Path(labels_csv).open(newline="") as fh:
        labels = list(csv.DictReader(fh))
    if not labels:
        raise ValueError(f"{labels_csv} has no rows")
    missing = {"path", "ingestion", "face_visible"} - set(labels[0])
    if missing:
        raise ValueError(f"{labels_csv} misses the columns {sorted(missing)}")
    return labels


def _row(
    label: dict[str, str], folder: Path, scorer: _Scores, decide: Callable[[dict[str, Any]], str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One clip scored: its labels, confidence, band, cues, reasons and time; and the
    scorer's result dict."""
    tick = time.monotonic()
    result, error = _score_one(scorer, folder / label["path"])
    row = {
        "path": label["path"],
        "ingestion": int(label["ingestion"]),
        "face_visible": int(label["face_visible"]),
        "confidence": float(result["confidence"]),
        "decision": decide(result),
        "reasons": list(result.get("reasons") or []),
        "key_moment_s": result.get("key_moment_s"),
        "cues": dict(result.get("cues") or {}),
        "error": error,
        "seconds": round(time.monotonic() - tick, 3),
    }
    return row, result


def cross_validate(
    scored: list[tuple[dict[str, Any], dict[str, Any]]],
    decide: Callable[[dict[str, Any]], str],
    prior_sd: float = 3.0,
) -> dict[str, Any]:
    """How the cue model does on clips it was not fitted on (leave one clip out).

    Each clip's confidence comes from weights fitted (:func:`workers.scoring.fit.fit_weights`)
    on all the other clips' cues and labels; its band from ``decide`` on its result with that
    confidence.

    Returns:
        ``roc_auc`` and ``roc_auc_95`` (bootstrap interval) of the left-out confidences,
        ``auto_accepted`` (positives and negatives), ``fitted_weights`` (fitted on every
        clip: what :data:`workers.scoring.evidence.FITTED_WEIGHTS` should be), ``prior_sd``
        and ``per_clip`` (path, left-out confidence, band).
    """
    cues = [row["cues"] for row, _ in scored]
    labels = [row["ingestion"] for row, _ in scored]
    held_out = fit.leave_one_out(cues, labels, prior_sd)
    bands = [decide({**r, "confidence": c}) for (_, r), c in zip(scored, held_out, strict=True)]
    accepted = [y for y, b in zip(labels, bands, strict=True) if b == "auto_accept"]
    return {
        "roc_auc": fit.auc(held_out, labels),
        "roc_auc_95": fit.bootstrap_auc(held_out, labels),
        "auto_accepted": {"positives": sum(accepted), "negatives": len(accepted) - sum(accepted)},
        "fitted_weights": fit.fit_weights(cues, labels, prior_sd=prior_sd).to_dict(),
        "prior_sd": prior_sd,
        "per_clip": [
            {"path": row["path"], "confidence": c, "decision": b}
            for (row, _), c, b in zip(scored, held_out, bands, strict=True)
        ],
    }


def workload(
    rows: list[dict[str, Any]], review_seconds: float = 10.0, dose_share: float = 0.9
) -> dict[str, Any]:
    """Supervisor-minutes per 100 real doses, if videos went to a person as these clips did.

    Per 100 doses come ``100 / dose_share`` videos; each dose video is reviewed at the rate
    the labelled positives were not auto-accepted, each other video at the rate the
    negatives were not. Returns those minutes, the minutes with every video reviewed, and
    the rates used (None without positives or negatives).
    """
    videos = 100.0 / dose_share

    def reviewed(label: int) -> float | None:
        group = [r for r in rows if r["ingestion"] == label]
        if not group:
            return None
        return sum(r["decision"] != "auto_accept" for r in group) / len(group)

    pos, neg = reviewed(1), reviewed(0)
    if pos is None or neg is None:
        return {"minutes_per_100_doses": None, "review_seconds": review_seconds}
    reviews = 100.0 * pos + (videos - 100.0) * neg
    return {
        "minutes_per_100_doses": round(reviews * review_seconds / 60.0, 2),
        "minutes_if_all_reviewed": round(videos * review_seconds / 60.0, 2),
        "review_seconds": review_seconds,
        "dose_share": dose_share,
        "doses_reviewed_share": round(pos, 4),
        "others_reviewed_share": round(neg, 4),
    }


def _summary(rows: list[dict[str, Any]], labels: str) -> dict[str, Any]:
    confidences = [r["confidence"] for r in rows]
    truth = [r["ingestion"] for r in rows]
    pos = [c for c, y in zip(confidences, truth, strict=True) if y]
    neg = [c for c, y in zip(confidences, truth, strict=True) if not y]
    return {
        "labels": labels,
        "clips": len(rows),
        "positives": len(pos),
        "roc_auc": roc_auc(confidences, truth),
        "margin": round(min(pos) - max(neg), 4) if pos and neg else None,
        "bands": _band_stats(rows),
        "auto_accept_share": round(
            sum(r["decision"] == "auto_accept" for r in rows) / len(rows), 4
        ),
        "no_face_auto_accepted": [
            r["path"] for r in rows if not r["face_visible"] and r["decision"] == "auto_accept"
        ],
        "unusable": [r["path"] for r in rows if r["error"]],
    }


def _write_clips_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    fields = ["path", "ingestion", "face_visible", "confidence", "decision", "reasons"]
    fields += ["key_moment_s", "cues", "error", "seconds"]
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {
                    **row,
                    "reasons": ";".join(row["reasons"]),
                    "cues": ";".join(f"{k}={v}" for k, v in row["cues"].items()),
                    "error": row["error"] or "",
                }
            )


def _plot(path: Path, rows: list[dict[str, Any]]) -> None:
    """Strip plot of the confidence of every clip, one row per label, with its name."""
    import matplotlib

    matplotlib.use("Agg")  # no display on workers and in CI
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.35 * len(rows)))
    order = sorted(rows, key=lambda r: (r["ingestion"], r["confidence"]))
    colours = {1: "tab:green", 0: "tab:red"}
    for i, row in enumerate(order):
        ax.scatter(row["confidence"], i, color=colours[row["ingestion"]], zorder=3)
        ax.annotate(
            Path(row["path"]).name,
            (row["confidence"], i),
            xytext=(6, -3),
            textcoords="offset points",
            fontsize=7,
        )
    ax.set_yticks([])
    ax.set_xlim(-0.02, 1.25)
    ax.set_xlabel("confidence (green: ingestion=1, red: ingestion=0)")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
