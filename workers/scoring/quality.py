"""Quality checks of one clip, each a reason a patient can act on ("film your face", ...).

Pure numpy over a :class:`workers.scoring.events.Track`. Image measures are taken on the main face
resampled to 64 px wide (see :mod:`workers.scoring.detect`), so they mean the same for near and far
faces and for any video size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workers.scoring.events import Track

QUALITY_REASONS = (
    "no_face",
    "multiple_people",
    "too_dark",
    "blurry",
    "too_short",
    "face_cut_off",
    "face_too_small",
)


@dataclass(frozen=True)
class QualityOptions:
    """Limits of the quality checks.

    Attributes:
        min_face_share: a confirmed face in fewer sampled frames than this is ``no_face``.
        multi_face_share: a second face in this share of the face frames is
            ``multiple_people``.
        dark_luma: median brightness (0..255) of the face, or of the frame without one, below
            which the clip is ``too_dark``. Well-exposed skin of every tone sits well above
            it; below it the face is a silhouette.
        blurry_sharpness: median Laplacian variance of the 64 px face below which the clip is
            ``blurry``: what a face gets when blurred by a Gaussian of about 2 % of its width.
        min_duration_s: shorter clips cannot show a hand going to the mouth and back.
        cut_off_share: the face runs off the frame in more than this share of face frames.
        min_face_px: median face width, in pixels of the sampled frames, below which the clip
            is ``face_too_small``: hand landmarks are then a few pixels apart and a fingertip
            on the lips cannot be told from one on the chin ("come closer to the camera").
    """

    min_face_share: float = 0.25
    multi_face_share: float = 0.3
    dark_luma: float = 35.0
    blurry_sharpness: float = 8.0
    min_duration_s: float = 1.0
    cut_off_share: float = 0.5
    min_face_px: float = 40.0


def robust_max_faces(faces: np.ndarray) -> int:
    """Most faces seen together in at least two frames and a tenth of the frames with a face."""
    faces = np.asarray(faces)
    with_face = int(np.sum(faces > 0))
    need = max(2, int(np.ceil(0.1 * with_face)))
    best = 0
    for k in range(1, int(faces.max(initial=0)) + 1):
        if np.sum(faces >= k) >= need:
            best = k
    return best


def assess(
    track: Track, duration_s: float, options: QualityOptions | None = None
) -> dict[str, bool | float | int]:
    """Quality flags of one clip.

    Returns:
        Each of :data:`QUALITY_REASONS` as a boolean, plus ``face_share`` (share of frames
        with a confirmed face), ``face_px`` (median face width in sampled pixels, 0 without a
        face) and ``max_faces``.
    """
    o = options or QualityOptions()
    visible = track.face_share >= o.min_face_share
    on_face = track.confirmed if visible else np.zeros(len(track.t), dtype=bool)
    # Face measures when there is a face; a clip without one is judged on the whole frame.
    luma = track.luma[on_face] if on_face.any() else track.luma
    sharp = track.sharpness[on_face] if on_face.any() else track.sharpness
    n_face = int(on_face.sum())
    multi = int(np.sum(track.faces[on_face] >= 2)) if n_face else 0
    return {
        "no_face": not visible,
        "multiple_people": bool(n_face and multi >= max(2, o.multi_face_share * n_face)),
        "too_dark": bool(len(luma) and float(np.median(luma)) < o.dark_luma),
        "blurry": bool(visible and len(sharp) and float(np.median(sharp)) < o.blurry_sharpness),
        "too_short": bool(duration_s < o.min_duration_s),
        "face_cut_off": bool(n_face and np.mean(track.face_cut[on_face]) > o.cut_off_share),
        "face_too_small": bool(
            n_face and float(np.nanmedian(track.face_width[on_face])) < o.min_face_px
        ),
        "face_share": round(track.face_share, 3),
        "face_px": round(float(np.nanmedian(track.face_width[on_face])), 1) if n_face else 0.0,
        "max_faces": robust_max_faces(track.faces) if visible else 0,
    }
