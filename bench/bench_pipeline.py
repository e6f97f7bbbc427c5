"""Processing speed against the floor of decoding: ``python -m bench.bench_pipeline [--json]``.

Builds phone-like clips from a real clip in ../shared/data/clips (30 s 1080x1920 portrait H.264
High profile with B-frames at about 8 Mbit/s, and a 30 s 1280x720 one), then measures in one run,
each stage in a process of its own so its CPU time and peak memory come from ``wait4``:

1. floor: ``ffmpeg -i clip -f null -`` (decode only);
2. naive: the baseline in ``bench/naive.py``;
3. real: transcode plus score exactly as the workers do (``workers.process``).

Prints one JSON object ``{"clips": [...]}``; ``--long`` adds a 3-minute 1080p clip for memory.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from vot.config import REPO_ROOT
from vot.media import ffmpeg_exe

SOURCE = REPO_ROOT.parent / "shared" / "data" / "clips" / "thumbsup_face.mp4"
PHONE_X264 = [
    "-c:v",
    "libx264",
    "-profile:v",
    "high",
    "-bf",
    "3",
    "-b:v",
    "8M",
    "-maxrate",
    "8M",
    "-bufsize",
    "16M",
    "-pix_fmt",
    "yuv420p",
    "-c:a",
    "aac",
]
CLIPS = {
    # name: (filter making the picture, seconds)
    "1080p_portrait_30s": ("crop=405:720,scale=1080:1920,fps=30", 30),
    "720p_landscape_30s": ("scale=1280:720,fps=30", 30),
}
LONG_CLIP = ("1080p_portrait_180s", "crop=405:720,scale=1080:1920,fps=30", 180)


def build_clip(out: Path, vf: str, seconds: int, source: Path = SOURCE) -> Path:
    """A phone-like clip looping ``source`` for ``seconds``."""
    if not out.exists():
        subprocess.run(
            [
                ffmpeg_exe(),
                "-hide_banner",
                "-loglevel",
                "error",
                "-y",
                "-stream_loop",
                "-1",
                "-i",
                str(source),
                "-t",
                str(seconds),
                "-vf",
                vf,
                *PHONE_X264,
                str(out),
            ],
            check=True,
        )
    return out


def measured(cmd: list[str]) -> dict[str, float]:
    """Run ``cmd``; its wall time, CPU time (with its children) and peak RSS."""
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - started
    out = proc.stdout.read().decode() if proc.stdout else ""
    err = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{cmd[:4]} failed: {err[-2000:]}")
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "stdout": out,
    }  # type: ignore[dict-item]


def stage(name: str, clip: Path) -> dict[str, object]:
    """Run one stage in this process (called as a subprocess by :func:`bench_clip`)."""
    with tempfile.TemporaryDirectory(prefix="vot-bench-") as tmp:
        if name == "naive":
            from bench.naive import naive_pipeline

            return {"frames": naive_pipeline(clip, Path(tmp))}
        from workers.process import process_video

        result = process_video(clip, Path(tmp))
        return {
            "frames": result.score["quality"]["frames_analysed"],
            "confidence": result.score["confidence"],
        }


def bench_clip(name: str, clip: Path, naive: bool = True) -> dict[str, object]:
    python = [sys.executable, "-m", "bench.bench_pipeline", "--stage"]
    floor = measured(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-i", str(clip), "-f", "null", "-"]
    )
    real = measured([*python, "real", str(clip)])
    real_out = json.loads(str(real["stdout"]))
    row: dict[str, object] = {
        "name": name,
        "floor_cpu_s": round(floor["cpu_s"], 3),
        "floor_wall_s": round(floor["wall_s"], 3),
        "real_cpu_s": round(real["cpu_s"], 3),
        "real_wall_s": round(real["wall_s"], 3),
        "real_to_floor_cpu": round(real["cpu_s"] / floor["cpu_s"], 3),
        "frames_analysed_per_s": round(real_out["frames"] / real["wall_s"], 1),
        "frames_analysed": real_out["frames"],
        "confidence": real_out["confidence"],
        "peak_rss_mb": round(real["peak_rss_mb"], 1),
    }
    if naive:
        slow = measured([*python, "naive", str(clip)])
        row["naive_wall_s"] = round(slow["wall_s"], 3)
        row["naive_cpu_s"] = round(slow["cpu_s"], 3)
        row["naive_to_real_wall"] = round(slow["wall_s"] / real["wall_s"], 3)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    parser.add_argument("--long", action="store_true", help="add a 3-minute 1080p clip")
    parser.add_argument("--workdir", type=Path, default=REPO_ROOT / "bench" / "out")
    parser.add_argument("--stage", choices=("naive", "real"), help=argparse.SUPPRESS)
    parser.add_argument("clip", nargs="?", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    os.environ.setdefault("GLOG_minloglevel", "2")
    if args.stage:
        print(json.dumps(stage(args.stage, args.clip)))
        return 0
    if not SOURCE.is_file():
        print(f"bench: the source clip {SOURCE} is missing", file=sys.stderr)
        return 1
    args.workdir.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, (vf, seconds) in CLIPS.items():
        clip = build_clip(args.workdir / f"{name}.mp4", vf, seconds)
        rows.append(bench_clip(name, clip))
        if not args.json:
            print(json.dumps(rows[-1]), file=sys.stderr)
    if args.long:
        name, vf, seconds = LONG_CLIP
        rows.append(
            bench_clip(name, build_clip(args.workdir / f"{name}.mp4", vf, seconds), naive=False)
        )
    print(json.dumps({"clips": rows}, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
