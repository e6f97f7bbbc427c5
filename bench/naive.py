"""The naive pipeline kept as the baseline: what the first version of a VOT worker would do.

A separate ffmpeg transcode, then OpenCV reads every frame of the result at full size and runs
MediaPipe face mesh and hands on each one. Used only by the benchmark.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from vot.media import ffmpeg_exe


def naive_pipeline(src: Path, workdir: Path) -> int:
    """Transcode ``src``, then run face mesh and hands on every frame; returns frames analysed."""
    import cv2
    import mediapipe as mp

    review = workdir / "naive_review.mp4"
    subprocess.run(
        [
            ffmpeg_exe(),
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-i",
            str(src),
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-crf",
            "26",
            "-movflags",
            "+faststart",
            "-c:a",
            "aac",
            str(review),
        ],
        check=True,
    )
    frames = 0
    cap = cv2.VideoCapture(str(review))
    with (
        mp.solutions.face_mesh.FaceMesh(max_num_faces=2, refine_landmarks=True) as mesh,
        mp.solutions.hands.Hands(max_num_hands=2) as hands,
    ):
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            mesh.process(rgb)
            hands.process(rgb)
            frames += 1
    cap.release()
    return frames
