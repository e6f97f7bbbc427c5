"""Graphs built by workers.graphs.on_calling_thread run on the caller's thread, with the
same answers as MediaPipe's own thread pool."""

import os

from tests.conftest import clip
from workers.frames import FrameSamplerOptions, sample_frames
from workers.graphs import on_calling_thread


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


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
    before = _threads()
    with on_calling_thread():
        own = face_detection.FaceDetection(model_selection=1)
    started_own = _threads() - before
    assert solution_base.calculator_graph.CalculatorGraph is make  # restored after the block
    before = _threads()
    pooled = face_detection.FaceDetection(model_selection=1)
    started_pooled = _threads() - before
    with own, pooled:
        assert started_own == 0 < started_pooled
        found = _detections(own, frames)
        assert found == _detections(pooled, frames)
        assert sum(len(boxes) for boxes in found) >= len(frames) - 1  # a face in the clip
