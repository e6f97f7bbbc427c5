"""workers.scoring.evaluation on a small labels file pointing at real clips, with a fake triage
rule."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest

from tests.conftest import CLIPS, no_shared_data
from workers.scoring.evaluation import evaluate, roc_auc


def test_roc_auc_counts_ties_as_half() -> None:
    assert roc_auc([0.9, 0.8, 0.1], [1, 1, 0]) == 1.0
    assert roc_auc([0.1, 0.9], [1, 0]) == 0.0
    assert roc_auc([0.5, 0.5, 0.2], [1, 0, 0]) == 0.75  # one tie (1/2) and one win
    assert roc_auc([0.3, 0.4], [1, 1]) is None


def fake_decide(result: dict) -> str:
    if result["confidence"] >= 0.9:
        return "auto_accept"
    return "reject" if result["confidence"] < 0.1 else "review"


def test_evaluate_scores_reports_and_writes_files(tmp_path: Path) -> None:
    if not CLIPS.is_dir():
        no_shared_data("real clips")
    from workers.scoring.scorer import Scorer

    (tmp_path / "broken.mp4").write_text("not a video\n" * 50)
    rows = [
        (os.path.relpath(CLIPS / "asl_eat.mkv", tmp_path), 1, 1),
        (os.path.relpath(CLIPS / "asl_brother.mkv", tmp_path), 0, 1),
        (os.path.relpath(CLIPS / "webcam_woman_head_turns.mp4", tmp_path), 0, 1),
        ("broken.mp4", 0, 0),
    ]
    labels = tmp_path / "labels.csv"
    with labels.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "ingestion", "face_visible", "note"])
        writer.writerows([(*row, "") for row in rows])

    with Scorer() as scorer:
        summary = evaluate(labels, tmp_path / "out", scorer, fake_decide)

    assert summary["clips"] == 4 and summary["positives"] == 1
    assert summary["roc_auc"] == 1.0 and summary["margin"] > 0.5
    by_path = {Path(r["path"]).name: r for r in summary["per_clip"]}
    broken = by_path["broken.mp4"]
    assert broken["confidence"] == 0.0 and broken["decision"] == "reject"
    assert broken["reasons"][0].startswith("unusable: ") and broken["error"]
    assert by_path["asl_eat.mkv"]["decision"] == "auto_accept"
    assert 0.2 <= by_path["asl_eat.mkv"]["key_moment_s"] <= 1.5
    bands = summary["bands"]
    assert bands["auto_accept"] == {"clips": 1, "ingestion": 1, "precision": 1.0, "recall": 1.0}
    assert bands["reject"]["clips"] == 3 and bands["reject"]["precision"] == 0.0
    assert bands["review"] == {"clips": 0, "ingestion": 0, "precision": None, "recall": 0.0}
    assert summary["auto_accept_share"] == 0.25 and summary["no_face_auto_accepted"] == []
    assert summary["unusable"] == ["broken.mp4"]
    cv = summary["cross_validation"]
    assert cv["roc_auc"] is not None and len(cv["per_clip"]) == 4
    assert cv["roc_auc_95"][0] <= cv["roc_auc"] <= cv["roc_auc_95"][1]
    # One positive of three videos in four auto-accepted; the other clips all reviewed.
    work = summary["workload"]
    assert work["doses_reviewed_share"] == 0.0 and work["others_reviewed_share"] == 1.0
    assert work["minutes_per_100_doses"] == pytest.approx(100 / 9 * 10 / 60, abs=0.01)

    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["roc_auc"] == 1.0 and len(report["per_clip"]) == 4
    with (tmp_path / "out" / "clips.csv").open(newline="") as fh:
        assert [r["decision"] for r in csv.DictReader(fh)].count("reject") == 3
    assert (tmp_path / "out" / "confidence.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_rejects_a_labels_file_without_rows(tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text("path,ingestion,face_visible,note\n")
    with pytest.raises(ValueError, match="no rows"):
        evaluate(labels, tmp_path / "out", scorer=None, decide=fake_decide)  # type: ignore[arg-type]
