"""Triage: turn a score into an auto-accept / review / reject band, with reasons.

Pure functions over plain values; the thresholds come from versioned JSON files in ``models/``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

AUTO_ACCEPT = "auto_accept"
REVIEW = "review"
REJECT = "reject"
DECISIONS = (AUTO_ACCEPT, REVIEW, REJECT)

# Quality reasons that stop a video being accepted without a person even when the
# confidence is high: a supervisor must see who is in the frame.
BLOCKS_AUTO_ACCEPT = frozenset(
    {
        "no_face",
        "multiple_people",
        "face_cut_off",
        "too_dark",
        "blurry",
        "too_short",
        "face_too_small",
        "replayed",  # the same recording as an earlier video (vot.pipeline.replays)
    }
)


class ThresholdError(ValueError):
    """A thresholds file is missing or malformed."""


@dataclass(frozen=True)
class Thresholds:
    """The band edges of one thresholds version.

    ``auto_accept``: confidence at or above which a clean video needs no person.
    ``reject_below``: confidence below which the video is in the reject band.
    """

    version: str
    auto_accept: float
    reject_below: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.reject_below <= self.auto_accept <= 1.0:
            raise ThresholdError(
                f"thresholds {self.version}: need 0 <= reject_below <= auto_accept <= 1, got "
                f"reject_below={self.reject_below}, auto_accept={self.auto_accept}"
            )


@dataclass(frozen=True)
class Triage:
    """The band a video falls in and why."""

    decision: str
    reasons: tuple[str, ...]


def load_thresholds(models_dir: Path, version: str) -> Thresholds:
    """Read ``models_dir/thresholds/<version>.json``.

    Raises:
        ThresholdError: the file is missing, not JSON, or its values are out of range.
    """
    path = Path(models_dir) / "thresholds" / f"{version}.json"
    try:
        data = json.loads(path.read_text())
        return Thresholds(
            version=str(data["version"]),
            auto_accept=float(data["auto_accept"]),
            reject_below=float(data["reject_below"]),
        )
    except FileNotFoundError:
        raise ThresholdError(f"no thresholds file {path}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ThresholdError(f"thresholds file {path} is malformed: {exc}") from None


def decide(
    confidence: float,
    face_visible: bool,
    reasons: Iterable[str],
    thresholds: Thresholds,
) -> Triage:
    """Place one scored video in a band.

    A video is auto-accepted only when its confidence reaches ``auto_accept``, a face is visible
    and no quality reason blocks it; such a blocked video goes to review with the blocking
    reasons listed first, so the supervisor sees why the scorer was unsure.
    """
    reasons = tuple(reasons)
    blocking = tuple(r for r in reasons if r in BLOCKS_AUTO_ACCEPT)
    if not face_visible and "no_face" not in blocking:
        blocking = ("no_face", *blocking)
    if confidence >= thresholds.auto_accept:
        if not blocking:
            return Triage(AUTO_ACCEPT, reasons)
        return Triage(REVIEW, blocking + tuple(r for r in reasons if r not in blocking))
    if confidence < thresholds.reject_below:
        return Triage(REJECT, reasons or ("low_confidence",))
    return Triage(REVIEW, reasons or ("uncertain",))


def decide_dict(score: Mapping[str, object], thresholds: Thresholds) -> Triage:
    """:func:`decide` over a scorer result in its JSON form."""
    reasons = score.get("reasons") or []
    if not isinstance(reasons, list | tuple):
        raise TypeError(f"reasons must be a list, got {type(reasons).__name__}")
    confidence = score["confidence"]
    if not isinstance(confidence, int | float):
        raise TypeError(f"confidence must be a number, got {type(confidence).__name__}")
    return decide(
        float(confidence), bool(score.get("face_visible")), [str(r) for r in reasons], thresholds
    )


@dataclass(frozen=True)
class Triaged:
    """A scorer's result in its JSON form, the band it falls in, and the thresholds that put it
    there: what ``vot score`` prints and the score job stores."""

    score: Mapping[str, Any]
    triage: Triage
    threshold_version: str

    def to_dict(self) -> dict[str, Any]:
        """The scorer's JSON contract with ``decision``, ``reasons`` and ``threshold_version``."""
        return {
            **self.score,
            "decision": self.triage.decision,
            "reasons": list(self.triage.reasons),
            "threshold_version": self.threshold_version,
        }


def with_reason(scored: Triaged, reason: str) -> Triaged:
    """``scored`` with ``reason`` first among its reasons; a reason that blocks auto-accept
    moves an auto-accepted video to review (the other bands stay as they are)."""
    triage = scored.triage
    decision = triage.decision
    if decision == AUTO_ACCEPT and reason in BLOCKS_AUTO_ACCEPT:
        decision = REVIEW
    reasons = (reason, *(r for r in triage.reasons if r != reason))
    return replace(scored, triage=Triage(decision, reasons))


def triaged(score: Mapping[str, Any], thresholds: Thresholds) -> Triaged:
    """Place a scorer result (JSON form) in its band, see :func:`decide`."""
    return Triaged(score, decide_dict(score, thresholds), thresholds.version)
