"""Score one video file and triage it: what ``vot score`` prints and the score job stores."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from vot.config import Settings
from vot.triage import decide_dict, load_thresholds
from workers.scorer import Scorer

_scorers: dict[int, Scorer] = {}


def preload() -> None:
    """Import the scorer's libraries (MediaPipe, OpenCV) without starting any graph.

    A worker calls this once before forking its work-horses, which then start each job with the
    libraries loaded (about 0.7 s of CPU saved per job); graphs are made in the horse, since
    threads do not survive a fork.
    """
    from mediapipe.python.solutions import face_detection, face_mesh, hands  # noqa: F401


def shared_scorer() -> Scorer:
    """One scorer per process: loading the MediaPipe graphs costs more than a short clip.

    Keyed by process id: graphs made before a fork have no threads in the child and would hang.
    """
    scorer = _scorers.get(os.getpid())
    if scorer is None:
        scorer = _scorers[os.getpid()] = Scorer()
    return scorer


def score_file(path: Path, settings: Settings, scorer: Scorer | None = None) -> dict[str, Any]:
    """The scorer's result for ``path`` with ``decision``, ``reasons`` and ``threshold_version``.

    The returned dict also carries the :class:`vot.triage.Triage` under ``_triage`` for callers
    that store it; drop that key before printing.

    Raises:
        vot.media.MediaError: the file is not a usable video.
        vot.triage.ThresholdError: the configured thresholds file is missing or malformed.
    """
    thresholds = load_thresholds(settings.models_dir, settings.threshold_version)
    result = (scorer or shared_scorer()).score(Path(path)).to_dict()
    triage = decide_dict(result, thresholds)
    result["decision"] = triage.decision
    result["reasons"] = list(triage.reasons)
    result["threshold_version"] = thresholds.version
    result["_triage"] = triage
    return result
