"""The pipeline benchmark runs end to end on a short clip and prints the issue's JSON keys.

Nothing here checks a time: only that the benchmark measures what it says and pairs its runs.
"""

import json
from pathlib import Path

import pytest

from bench import bench_pipeline
from tests.conftest import no_shared_data, video

KEYS = {
    "name",
    "floor_cpu_s",
    "floor_wall_s",
    "naive_wall_s",
    "real_cpu_s",
    "real_wall_s",
    "real_to_floor_cpu",
    "naive_to_real_wall",
    "frames_analysed_per_s",
    "peak_rss_mb",
}


def test_bench_pipeline_pairs_floor_and_worker_runs(tmp_path: Path) -> None:
    short = bench_pipeline.build_clip(
        tmp_path / "short.mp4", "scale=360:640,fps=30", 2, 1, source=video()
    )
    row = bench_pipeline.bench_clip("1080p_short", short, naive=True, repeat=2)
    assert row.keys() >= KEYS
    runs = row["real_to_floor_cpu_runs"]
    assert len(runs) == 2 and row["real_to_floor_cpu"] in runs
    # The row's times are those of the median pair, so they give its ratio.
    assert row["real_cpu_s"] / row["floor_cpu_s"] == pytest.approx(
        row["real_to_floor_cpu"], rel=0.01
    )
    assert row["frames_analysed"] == 20 and 0 < row["frames_detected"] <= 20
    assert row["peak_rss_mb"] > 50  # the worker run's own process, MediaPipe loaded
    json.dumps(row)


def test_bench_pipeline_refuses_without_its_source(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(bench_pipeline, "SOURCE", tmp_path / "missing.mp4")
    assert bench_pipeline.main(["--json", "--workdir", str(tmp_path)]) == 1
    assert not list(tmp_path.glob("*.mp4"))


def test_bench_replay_finds_the_copy_and_nothing_else(tmp_path: Path) -> None:
    from bench import bench_replay

    if not (bench_replay.CLIPS / "labels.csv").is_file():
        no_shared_data("real clips")
    got = bench_replay.measure(f"sqlite:///{tmp_path / 'replay.db'}", clinic=40, noise=22)
    assert got["candidates"] == 40 + bench_replay.replays.PATIENT_LIMIT - 1
    assert got["find_replay_matched"] and not got["find_new_matched"]
    assert not got["naive_new_matched"]  # the quick checks drop nothing the full one finds
    assert got["find_new_ms"] > 0 and got["naive_over_find"] > 0
