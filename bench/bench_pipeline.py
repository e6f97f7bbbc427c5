"""Processing speed against the floor of decoding: ``python -m bench.bench_pipeline [--json]``.

Builds phone-like clips from a real clip in ../shared/data/clips (30 s 1080x1920 portrait H.264
High profile with B-frames at about 8 Mbit/s, and a 30 s 1280x720 one), then measures in one run,
each stage in a process of its own:

1. floor: ``ffmpeg -i clip -f null -`` (decode only), CPU time from ``wait4``;
2. naive: the baseline in ``bench/naive.py``;
3. real: review copy plus score exactly as the workers do (``workers.transcode.review_copy``).

A worker imports its modules once and then runs job after job, so the naive and real stages
import theirs first and time only the work on the clip (their CPU time includes every ffmpeg
they start); the one-off import is reported as ``startup_cpu_s``. Peak memory is the stage
process's, children included, from ``wait4``.

A third clip, ``reencode_1080p_16mbps_30s``, has the bitrate phones record at by default: too
much to stream to supervisors as it is, so it takes the re-encoding path.

The floor and the worker path run ``--repeat`` times per clip (3 by default), in turns; the row
is the run with the median worker/floor ratio, and ``real_to_floor_cpu_runs`` lists every ratio.
The naive baseline runs once. Peak memory is the highest of the worker runs.

Prints one JSON object ``{"clips": [...]}``; ``--long`` adds a 3-minute 1080p clip for memory.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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
    # name: (filter making the picture, seconds, Mbit/s, compare with the naive baseline)
    "1080p_portrait_30s": ("crop=405:720,scale=1080:1920,fps=30", 30, 8, True),
    "720p_landscape_30s": ("scale=1280:720,fps=30", 30, 8, True),
    "reencode_1080p_16mbps_30s": ("crop=405:720,scale=1080:1920,fps=30", 30, 16, False),
}
LONG_CLIP = ("1080p_portrait_180s", "crop=405:720,scale=1080:1920,fps=30", 180, 8, False)


def _x264(mbps: int) -> list[str]:
    rate = {"-b:v": f"{mbps}M", "-maxrate": f"{mbps}M", "-bufsize": f"{2 * mbps}M"}
    args = list(PHONE_X264)
    for i, arg in enumerate(args[:-1]):
        if arg in rate:
            args[i + 1] = rate[arg]
    return args


def build_clip(out: Path, vf: str, seconds: int, mbps: int = 8, source: Path = SOURCE) -> Path:
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
                *_x264(mbps),
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


def _cpu() -> float:
    """CPU seconds of this process and of its children that have ended."""
    own, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def stage(name: str, clip: Path) -> dict[str, object]:
    """Run one stage in this process (called as a subprocess by :func:`bench_clip`)."""
    startup = _cpu()
    import mediapipe  # noqa: F401  (what a worker has imported before its first job)

    from bench.naive import naive_pipeline
    from workers.jobs import process_video
    from workers.scoring.scorer import Scorer  # noqa: F401

    startup = _cpu() - startup
    with tempfile.TemporaryDirectory(prefix="vot-bench-") as tmp:
        cpu, wall = _cpu(), time.monotonic()
        if name == "naive":
            out: dict[str, object] = {"frames": naive_pipeline(clip, Path(tmp))}
        else:
            result = process_video(clip, Path(tmp))
            quality = result.score["quality"]
            out = {
                "frames": quality["frames_analysed"],
                "frames_detected": quality["frames_detected"],
                "confidence": result.score["confidence"],
            }
        out.update(cpu_s=_cpu() - cpu, wall_s=time.monotonic() - wall, startup_cpu_s=startup)
    return out


def bench_clip(name: str, clip: Path, naive: bool = True, repeat: int = 1) -> dict[str, object]:
    """One clip's row. The floor and the worker path run ``repeat`` times, one after the other,
    and each worker run is divided by the floor run just before it: the machine's speed drifts
    between runs, so a ratio of neighbours is steadier than a ratio of separate averages. The
    row gives the median run and every ratio (``real_to_floor_cpu_runs``).
    """
    python = [sys.executable, "-m", "bench.bench_pipeline", "--stage"]
    floor_cmd = [
        ffmpeg_exe(),
        "-hide_banner",
        "-loglevel",
        "error",
        "-i",
        str(clip),
        "-f",
        "null",
        "-",
    ]
    pairs = []
    for _ in range(repeat):
        floor = measured(floor_cmd)
        real_run = measured([*python, "real", str(clip)])
        real = json.loads(str(real_run["stdout"]))
        pairs.append((floor, real_run, real, real["cpu_s"] / floor["cpu_s"]))
    ratios = [pair[3] for pair in pairs]
    floor, real_run, real, ratio = sorted(pairs, key=lambda pair: pair[3])[len(pairs) // 2]
    row: dict[str, object] = {
        "name": name,
        "floor_cpu_s": round(floor["cpu_s"], 3),
        "floor_wall_s": round(floor["wall_s"], 3),
        "real_cpu_s": round(real["cpu_s"], 3),
        "real_wall_s": round(real["wall_s"], 3),
        "real_to_floor_cpu": round(ratio, 3),
        "real_to_floor_cpu_runs": [round(r, 3) for r in ratios],
        "frames_analysed_per_s": round(real["frames"] / real["wall_s"], 1),
        "frames_analysed": real["frames"],
        "frames_detected": real["frames_detected"],
        "confidence": real["confidence"],
        "startup_cpu_s": round(real["startup_cpu_s"], 3),
        "peak_rss_mb": round(max(pair[1]["peak_rss_mb"] for pair in pairs), 1),
    }
    if naive:
        slow = json.loads(str(measured([*python, "naive", str(clip)])["stdout"]))
        row["naive_wall_s"] = round(slow["wall_s"], 3)
        row["naive_cpu_s"] = round(slow["cpu_s"], 3)
        row["naive_to_real_wall"] = round(slow["wall_s"] / real["wall_s"], 3)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    parser.add_argument("--long", action="store_true", help="add a 3-minute 1080p clip")
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="floor and worker runs per clip; the row is the median ratio's pair (default 3)",
    )
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
    clips = [(name, *spec) for name, spec in CLIPS.items()]
    if args.long:
        clips.append(LONG_CLIP)
    for name, vf, seconds, mbps, naive in clips:
        clip = build_clip(args.workdir / f"{name}.mp4", vf, seconds, mbps)
        rows.append(bench_clip(name, clip, naive, max(1, args.repeat)))
        if not args.json:
            print(json.dumps(rows[-1]), file=sys.stderr)
    print(json.dumps({"clips": rows}, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
