"""The ``vot`` command as a user runs it: a subprocess with its own environment."""

import json
from pathlib import Path

import pytest

from tests.conftest import clip, run_cli, video

CONTRACT_KEYS = {
    "confidence",
    "decision",
    "face_visible",
    "max_faces",
    "events",
    "quality",
    "reasons",
    "model_version",
    "threshold_version",
}


def vot(tmp_path: Path, *args: str, stdin: str | None = None, **env: str):
    base = {"VOT_DATA_DIR": str(tmp_path / "data"), "VOT_SECRET_KEY": "t"}
    return run_cli(*args, env=base | env, stdin=stdin)


def test_score_json_contract(tmp_path: Path) -> None:
    result = vot(tmp_path, "score", str(clip("asl_eat.mkv")), "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)  # stdout is exactly one JSON object
    assert out.keys() >= CONTRACT_KEYS
    assert 0.0 <= out["confidence"] <= 1.0
    assert out["decision"] in ("auto_accept", "review", "reject")
    assert out["face_visible"] is True and out["max_faces"] >= 1
    assert {"duration_s", "too_dark", "blurry", "too_short"} <= out["quality"].keys()
    for event in out["events"]:
        assert event["type"] in ("hand_to_mouth", "pill_shown", "drink", "mouth_open")
        assert 0.0 <= event["start_s"] <= event["end_s"]


@pytest.mark.parametrize("content", [b"", b"just some text, renamed\n" * 40])
def test_score_unusable_file_is_one_line_error(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "dose.mp4"
    bad.write_bytes(content)
    result = vot(tmp_path, "score", str(bad), "--json")
    assert result.returncode != 0
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vot: error:"), result.stderr


def test_score_missing_file(tmp_path: Path) -> None:
    result = vot(tmp_path, "score", str(tmp_path / "nope.mp4"))
    assert result.returncode == 1 and "no such file" in result.stderr


def test_unknown_setting_is_refused(tmp_path: Path) -> None:
    result = vot(tmp_path, "db", "upgrade", VOT_DATABSE_URL="sqlite://")
    assert result.returncode == 2 and "VOT_DATABSE_URL" in result.stderr


def test_submit_without_a_running_queue_keeps_the_video_and_says_so(tmp_path: Path) -> None:
    assert (
        vot(
            tmp_path, "patient", "add", "P-9", "--clinic", "North", "--tz", "Asia/Shanghai"
        ).returncode
        == 0
    )
    first = vot(
        tmp_path,
        "submit",
        "--patient",
        "P-9",
        "--dose-date",
        "2026-11-20",
        str(video()),
    )
    assert first.returncode == 0, first.stderr
    assert "submission 1: received for dose 2026-11-20" in first.stdout
    assert "will be processed when" in first.stdout
    again = vot(
        tmp_path,
        "submit",
        "--patient",
        "P-9",
        "--dose-date",
        "2026-11-20",
        str(video()),
    )
    assert "already received" in again.stdout
    status = vot(tmp_path, "status", "1", "--json")
    info = json.loads(status.stdout)
    assert (info["status"], info["patient"], info["dose_date"]) == ("received", "P-9", "2026-11-20")
    assert vot(tmp_path, "status", "2").returncode == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("patient", "add", "P-1", "--clinic", "X", "--tz", "Mars/Base"), "unknown time zone"),
        (("patient", "add", "bad code!", "--clinic", "X"), "patient code"),
        (("submit", "--patient", "NOBODY", "x.mp4"), "no patient with code"),
    ],
)
def test_user_errors_are_one_line(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    result = vot(tmp_path, *args)
    assert result.returncode == 1
    assert result.stderr.strip().startswith("vot: error:") and message in result.stderr


def test_bad_date_is_a_usage_error(tmp_path: Path) -> None:
    result = vot(tmp_path, "submit", "--patient", "P", "--dose-date", "20-11-2026", "x.mp4")
    assert result.returncode == 2 and "YYYY-MM-DD" in result.stderr


def test_user_add_reads_the_password_from_stdin(tmp_path: Path) -> None:
    made = vot(
        tmp_path,
        "user",
        "add",
        "sam",
        "--role",
        "supervisor",
        "--clinic",
        "North",
        "--password-stdin",
        stdin="correct horse battery\n",
    )
    assert made.returncode == 0 and "created" in made.stdout
    short = vot(
        tmp_path, "user", "add", "kim", "--role", "analyst", "--password-stdin", stdin="short\n"
    )
    assert short.returncode == 1 and "at least 8" in short.stderr


def test_eval_prints_a_json_summary_and_writes_the_report(tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "path,ingestion,face_visible,note\n"
        f"{clip('asl_eat.mkv')},1,1,eat\n{clip('asl_learn.mkv')},0,1,forehead\n"
    )
    result = vot(tmp_path, "eval", str(labels), "--out", str(tmp_path / "report"))
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["clips"] == 2 and summary["roc_auc"] == 1.0
    assert {"report.json", "clips.csv", "confidence.png"} <= {
        p.name for p in (tmp_path / "report").iterdir()
    }
    missing = vot(tmp_path, "eval", str(tmp_path / "nope.csv"))
    assert missing.returncode == 1 and "no labels file" in missing.stderr


def test_calibrate_without_verdicts_keeps_the_bands_and_says_why(tmp_path: Path) -> None:
    result = vot(tmp_path, "calibrate", "--version", "v9", "--dry-run")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["auto_accept"], summary["reject_below"], summary["reviewed"]) == (0.9, 0.1, 0)
    assert len(summary["notes"]) == 2 and "written" not in summary
