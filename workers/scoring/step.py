"""The score step: score one video file and triage it, for ``vot score`` and the score job."""

from __future__ import annotations

import os
from pathlib import Path

from vot.config import Settings
from vot.triage.bands import Triaged, load_thresholds, triaged
from workers.scoring.scorer import Scorer

_scorers: dict[int, Scorer] = {}


def preload() -> None:
    """Import the scorer's libraries (MediaPipe, OpenCV) without starting any graph.

    A worker calls this once before forking its work-horses, which then start each job with the
    libraries loaded (about 0.7 s of CPU saved per job); graphs are made in the horse, since
    threads do not survive a fork.
    """
    from mediapipe.python.solutions import face_detection, face_mesh, hands, pose  # noqa: F401


def shared_scorer() -> Scorer:
    """One scorer per process: loading the MediaPipe graphs costs more than a short clip.

    Keyed by process id: graphs made before a fork have no threads in the child and would hang.
    """
    scorer = _scorers.get(os.getpid())
    if scorer is None:
        scorer = _scorers[os.getpid()] = Scorer()
    return scorer


def score_file(path: Path, settings: Settings, scorer: Scorer | None = None) -> Triaged:
    """The scorer's result for ``path``, placed in a band by the configured thresholds.

    Raises:
        vot.media.MediaError: the file is not a usable video.
        vot.triage.bands.ThresholdError: the configured thresholds file is missing or malformed.
    """
    thresholds = load_thresholds(settings.models_dir, settings.threshold_version)
    result = (scorer or shared_scorer()).score(Path(path)).to_dict()
    return triaged(result, thresholds)
