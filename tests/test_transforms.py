"""Same video, same score: the labelled clips taken through what phones and browsers do to them.

Each labelled clip with a face is rescaled to 360p and to 1080p, padded to portrait, mirrored,
turned by a rotation tag and re-encoded at 1 Mbit/s (ffmpeg, x264). On clips whose original
confidence is clear (at least 0.9 or at most 0.1, as in ``tests/test_fast_path.py``) the copy
must get the same triage decision and a confidence within 0.1 of the original. A pair the
scorer does not hold yet is a strict xfail with the measured numbers: the day it passes, its
marker must go.
"""

from __future__ import annotations

import csv
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import CLIPS, no_shared_data
from vot.config import REPO_ROOT
from vot.media import ffmpeg_exe
from vot.triage.bands import decide, load_thresholds
from workers.scoring.frames import content_box
from workers.scoring.scorer import Scorer, ScoreResult

# One encoder thread: x264 with threads and rate control is not deterministic.
X264 = ["-c:v", "libx264", "-preset", "veryfast", "-threads", "1", "-pix_fmt", "yuv420p", "-an"]
TRANSFORMS: dict[str, list[str]] = {
    "360p": ["-vf", "scale=-2:360", *X264, "-crf", "20"],
    "1080p": ["-vf", "scale=-2:1080", *X264, "-crf", "20"],
    # Landscape pictures in a 9:16 portrait frame, black above and below.
    "portrait_padded": [
        "-vf",
        "pad=w=iw:h=trunc(iw*16/9/2)*2:x=0:y=(oh-ih)/2",
        *X264,
        "-crf",
        "20",
    ],
    "mirrored": ["-vf", "hflip", *X264, "-crf", "20"],
    "rotation_tag": [],  # the same stored pictures with a 90-degree display tag
    "1mbit": ["-b:v", "1M", "-maxrate", "1M", "-bufsize", "2M", *X264],
}
# Pairs the scorer does not hold yet: (clip, transform) -> what was measured (scorer h2m-7).
_EDGE = (
    "asl_thanks sits at the auto-accept edge (0.903); the copy scores {}: within 0.1, but review"
)
NOT_HELD_YET: dict[tuple[str, str], str] = {
    ("asl_thanks.mkv", "360p"): _EDGE.format(0.850),
    ("asl_thanks.mkv", "1080p"): _EDGE.format(0.893),
    ("asl_thanks.mkv", "mirrored"): _EDGE.format(0.851),
    ("hand_over_mouth_closeup.mp4", "rotation_tag"): "0.990 -> 0.841 (auto-accept -> review): "
    "turned upright, the face is lost in 45 of 75 frames and the palm is not seen over the mouth",
    ("drink_from_can_doorway.mp4", "1080p"): "1.0 both, but review -> auto-accept: upscaled, the "
    "face is sampled at 57 px instead of 29, so face_too_small no longer holds it for review",
}


def _clips() -> list[str]:
    path = CLIPS / "labels.csv"
    if not path.is_file():
        return []
    with path.open(newline="") as fh:
        return [row["path"] for row in csv.DictReader(fh) if row["face_visible"] == "1"]


def _cases() -> list[object]:
    return [
        pytest.param(
            name,
            kind,
            marks=pytest.mark.xfail(strict=True, reason=NOT_HELD_YET[(name, kind)])
            if (name, kind) in NOT_HELD_YET
            else (),
            id=f"{name}-{kind}",
        )
        for name in _clips()
        for kind in TRANSFORMS
    ]


def transform(src: Path, kind: str, out_dir: Path) -> Path:
    """``src`` taken through ``kind`` of :data:`TRANSFORMS`, written in ``out_dir``."""
    out = out_dir / f"{src.stem}-{kind}.mp4"
    cmd = [ffmpeg_exe(), "-loglevel", "error", "-y"]
    if kind == "rotation_tag":
        cmd += ["-display_rotation", "90", "-i", str(src), "-c", "copy", "-an"]
    else:
        cmd += ["-i", str(src), *TRANSFORMS[kind]]
    subprocess.run([*cmd, str(out)], check=True)
    return out


@pytest.fixture(scope="module")
def scorer():
    if not (CLIPS / "labels.csv").is_file():
        no_shared_data("real clips")
    with Scorer() as s:
        yield s


@pytest.fixture(scope="module")
def originals(scorer: Scorer) -> dict[str, ScoreResult]:
    return {}


def _band(result: ScoreResult) -> str:
    thresholds = load_thresholds(REPO_ROOT / "models", "v1")
    return decide(result.confidence, result.face_visible, result.reasons, thresholds).decision


@pytest.mark.parametrize(("name", "kind"), _cases())
def test_a_transformed_copy_scores_like_the_original(
    scorer: Scorer, originals: dict[str, ScoreResult], tmp_path: Path, name: str, kind: str
) -> None:
    if name not in originals:
        originals[name] = scorer.score(CLIPS / name)
    original = originals[name]
    if 0.1 < original.confidence < 0.9:
        pytest.skip(
            f"{name} is not clear ({original.confidence}); the tolerance is for clear clips"
        )
    copy = scorer.score(transform(CLIPS / name, kind, tmp_path))
    measured = (original.confidence, copy.confidence, _band(original), _band(copy))
    assert _band(copy) == _band(original), measured
    assert abs(copy.confidence - original.confidence) <= 0.1, measured


def test_black_bars_are_found_and_dark_edges_are_not() -> None:
    gray = np.full((100, 60), 120, dtype=np.uint8)
    gray[:20], gray[80:] = 0, 10  # letterbox bars, one of them not quite black
    assert content_box(gray) == (0, 20, 60, 60)
    edge = np.full((100, 60), 120, dtype=np.uint8)
    edge[:2], edge[98:] = 0, 0  # two dark rows each side: the picture's own edge, not padding
    assert content_box(edge) == (0, 0, 60, 100)
    room = np.full((100, 60), 120, dtype=np.uint8)
    room[:, :20] = 0  # a dark room on one side of a lit face: no bar on the other side
    assert content_box(room) == (0, 0, 60, 100)
    assert content_box(np.zeros((100, 60), dtype=np.uint8)) == (0, 0, 60, 100)
