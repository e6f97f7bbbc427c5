"""Is a submission the same recording as an earlier one? Pure Python over perceptual fingerprints.

A fingerprint (made by ``workers.scoring.fingerprint`` during the scorer's decode) is a list of
hashes, :data:`PER_SECOND` a second from the start of the video, each written as
:data:`HEX_DIGITS` hex digits. A hash is the sign of the 16 x 16 lowest-frequency DCT
coefficients of a 64 x 64 grey thumbnail of the frame (black borders cut off first), row by row
(vertical frequency ``v``, then horizontal frequency ``u``), most significant bit first; the DC
bit is always 0. Signs of low frequencies survive re-encoding and resizing; a mirrored picture
flips exactly the bits of odd ``u``, so :func:`mirrored` needs no pixels.

:func:`same_recording` slides one fingerprint along the other (and along its mirror image): two
submissions are the same recording when, at some offset where they overlap over most of the
shorter one, the median Hamming distance of the aligned hashes is at most
:data:`MAX_MEDIAN_BITS`. That finds a recording re-encoded, trimmed, resized, padded or
mirrored, and tells apart different recordings of the same person in the same room. Measured
on the shared clips (``README.md``, "Replays"): aligned medians of 0 to 14 bits between each of
the 20 recordings and its copies (rescaled to 360p and 1080p, padded to portrait, mirrored,
re-encoded at 1 Mbit/s, trimmed by 0.7 s); 23.5 bits and more between different recordings,
the closest being two 2-second clips of one signer in one room, and 90 and 116 between the
pairs of clips cut from one source video.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

SIDE = 16  # DCT coefficients kept per axis
BITS = SIDE * SIDE
HEX_DIGITS = BITS // 4
PER_SECOND = 10  # hashes per second of video (every frame the scorer samples)
MAX_MEDIAN_BITS = 18  # of 255 informative bits: about halfway between 14 and 23.5 (above)
MIN_OVERLAP = 0.8  # share of the shorter fingerprint that must lie in the overlap
_MIRROR_MASK = sum(1 << (BITS - 1 - (v * SIDE + u)) for v in range(SIDE) for u in range(1, SIDE, 2))


def to_hex(bits: Sequence[bool]) -> str:
    """One hash as hex, ``bits`` in the order described in the module docstring."""
    if len(bits) != BITS:
        raise ValueError(f"a hash has {BITS} bits, got {len(bits)}")
    value = 0
    for bit in bits:
        value = (value << 1) | bool(bit)
    return f"{value:0{HEX_DIGITS}x}"


def parse(fingerprint: Sequence[str]) -> list[int]:
    """The hashes of a fingerprint as integers.

    Raises:
        ValueError: a hash is not :data:`HEX_DIGITS` hex digits.
    """
    out = []
    for h in fingerprint:
        if len(h) != HEX_DIGITS:
            raise ValueError(f"a hash is {HEX_DIGITS} hex digits, got {len(h)}: {h[:20]!r}")
        out.append(int(h, 16))
    return out


def mirrored(hashes: Sequence[int]) -> list[int]:
    """The hashes of the same frames mirrored left to right."""
    return [h ^ _MIRROR_MASK for h in hashes]


def hamming(a: int, b: int) -> int:
    """Number of bits in which two hashes differ."""
    return (a ^ b).bit_count()


def closest_alignment(a: Sequence[int], b: Sequence[int]) -> tuple[float, int] | None:
    """The lowest median Hamming distance of ``a`` and ``b`` aligned, and its offset.

    Only offsets where the two overlap over at least :data:`MIN_OVERLAP` of the shorter one
    count: a trimmed copy lies wholly inside its original. ``b[j]`` is aligned with
    ``a[j + offset]``. None when either is empty.
    """
    if not a or not b:
        return None
    need = max(1, math.ceil(MIN_OVERLAP * min(len(a), len(b))))
    best: tuple[float, int] | None = None
    for offset in range(-(len(b) - 1), len(a)):
        lo, hi = max(0, offset), min(len(a), offset + len(b))
        if hi - lo < need:
            continue
        median = statistics.median(hamming(a[i], b[i - offset]) for i in range(lo, hi))
        if best is None or median < best[0]:
            best = (median, offset)
    return best


def same_recording(a: Sequence[str], b: Sequence[str]) -> bool:
    """Whether fingerprints ``a`` and ``b`` come from the same recording.

    True for a recording re-encoded, trimmed, resized, padded or mirrored; False for a
    different recording, even of the same person in the same place. Empty fingerprints never
    match.

    Raises:
        ValueError: a hash is malformed.
    """
    ha, hb = parse(a), parse(b)
    for other in (hb, mirrored(hb)):
        best = closest_alignment(ha, other)
        if best is not None and best[0] <= MAX_MEDIAN_BITS:
            return True
    return False
