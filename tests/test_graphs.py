"""Graphs built by workers.scoring.graphs.on_calling_thread run on the caller's thread, with the
same answers as MediaPipe's own thread pool."""

import json
import os
import subprocess
import sys

from tests.conftest import clip
from vot.config import REPO_ROOT
from workers.scoring.frames import FrameSamplerOptions, sample_frames
from workers.scoring.graphs import on_calling_thread

# Run in a fresh interpreter: in the test process, threads of earlier tests come and go.
THREADS_STARTED = """
import json, os
from mediapipe.python.solutions import face_detection
from workers.scoring.graphs import on_calling_thread

def threads():
    return len(os.listdir("/proc/self/task"))

before = threads()
with on_calling_thread():
    own = face_detection.FaceDetection(model_selection=1)
started_own = threads() - before
before = threads()
pooled = face_detection.FaceDetection(model_selection=1)
print(json.dumps([started_own, threads() - before]))
"""


def _threads_started() -> tuple[int, int]:
    """Threads started by a graph made inside on_calling_thread, and by one made outside."""
    env = {**os.environ, "GLOG_minloglevel": "2"}
    out = subprocess.run(
        [sys.executable, "-c", THREADS_STARTED],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
        env=env,
        timeout=120,
    )
    own, pooled = json.loads(out.stdout.strip().splitlines()[-1])
    return own, pooled


def _detections(graph, frames) -> list[list[tuple[float, ...]]]:
    out = []
    for frame in frames:
        result = graph.process(frame.rgb)
        boxes = []
        for det in result.detections or []:
            box = det.location_data.relative_bounding_box
            boxes.append((round(box.xmin, 5), round(box.ymin, 5), round(det.score[0], 5)))
        out.append(boxes)
    return out


def test_graphs_run_on_the_calling_thread_with_the_same_answers() -> None:
    from mediapipe.python import solution_base
    from mediapipe.python.solutions import face_detection

    frames = list(sample_frames(clip("asl_eat.mkv"), FrameSamplerOptions(fps=5, max_side=480)))
    make = solution_base.calculator_graph.CalculatorGraph
    with on_calling_thread():
        own = face_detection.FaceDetection(model_selection=1)
    assert solution_base.calculator_graph.CalculatorGraph is make  # restored after the block
    pooled = face_detection.FaceDetection(model_selection=1)
    started_own, started_pooled = _threads_started()
    with own, pooled:
        assert started_own == 0 < started_pooled
        found = _detections(own, frames)
        assert found == _detections(pooled, frames)
        assert sum(len(boxes) for boxes in found) >= len(frames) - 1  # a face in the clip
