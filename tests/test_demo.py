"""``vot demo`` on a small folder of real clips, twice: the second run duplicates nothing."""

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.conftest import clip


def test_demo_runs_through_the_queue_and_twice_is_idempotent(tmp_path: Path) -> None:
    clips = tmp_path / "clips"
    clips.mkdir()
    for name in ("asl_eat.mkv", "asl_learn.mkv", "hand_only.mp4"):
        shutil.copy(clip(name), clips / name)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOT_")}
    env.update(VOT_DATA_DIR=str(tmp_path / "data"), VOT_DEMO_PASSWORD="demo-password-1")

    def demo() -> str:
        done = subprocess.run(
            [sys.executable, "-m", "vot.app.cli", "demo", "--clips", str(clips)],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    first = demo()
    assert "3 videos" in first and "(3 new)" in first
    assert "username: demo-supervisor" in first and "password: demo-password-1" in first
    assert "Review queue" in first and "Adherence so far" in first
    for code in ("DEMO-001", "DEMO-002", "DEMO-003", "DEMO-004"):
        assert code in first
    second = demo()
    assert "(0 new)" in second
    db = sqlite3.connect(tmp_path / "data" / "vot.db")
    counts = {
        t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
        for t in ("clinics", "users", "patients", "regimens", "submissions", "scores")
    }
    assert counts == {
        "clinics": 1,
        "users": 1,
        "patients": 4,
        "regimens": 4,
        "submissions": 3,
        "scores": 3,
    }
    statuses = {s for (s,) in db.execute("SELECT status FROM submissions")}
    assert statuses <= {"review", "auto_accepted"}
    # No embedded Redis or worker outlives the command.
    leftovers = subprocess.run(
        ["pgrep", "-f", str(tmp_path / "data")], capture_output=True, text=True
    ).stdout.split()
    assert leftovers == []
