"""Regenerate the sample clips in this folder with ffmpeg's built-in test sources.

They stand in for the real clips of ../shared/data/clips when that folder is absent, so that
``vot demo`` still runs end to end. None shows a person: the scorer must give every one of them
the ``no_face`` reason and a low confidence (labels.csv says so).

    python sample_videos/make_samples.py
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from vot.media import ffmpeg_exe

HERE = Path(__file__).resolve().parent
# name, lavfi source, seconds, extra output options
SAMPLES = (
    ("testcard_landscape.mp4", "testsrc2=size=640x360:rate=25", 3, ["-c:v", "libx264"]),
    ("gradient_portrait.mp4", "gradients=size=360x640:rate=30:speed=0.05", 3, ["-c:v", "libx264"]),
    (
        "dark_noise.webm",
        "cellauto=size=320x240:rate=15,lutyuv=y=val/6",
        2,
        ["-c:v", "libvpx-vp9", "-b:v", "200k"],
    ),
)


def main() -> None:
    for name, source, seconds, options in SAMPLES:
        out = HERE / name
        subprocess.run(
            [
                ffmpeg_exe(),
                "-hide_banner",
                "-loglevel",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                source,
                "-t",
                str(seconds),
                "-pix_fmt",
                "yuv420p",
                *options,
                str(out),
            ],
            check=True,
        )
        print(f"wrote {out.name} ({out.stat().st_size // 1024} KiB)")
    (HERE / "labels.csv").write_text(
        "path,ingestion,face_visible,note\n"
        + "".join(f"{name},0,0,synthetic test pattern; nobody in frame\n" for name, *_ in SAMPLES)
    )


if __name__ == "__main__":
    main()
