"""Every key the application stores an object under: the one place that names them.

Keys are made here from ids and content hashes, never taken from a user. Raw uploads are
content-addressed, so storing the same bytes twice (a retry, the same file sent for two doses)
is one object; what is derived from a submission is named by its id.
"""

from __future__ import annotations


def raw(sha256: str) -> str:
    """A raw upload, as the phone sent it."""
    return f"raw/{sha256[:2]}/{sha256}"


def review_copy(sub_id: int) -> str:
    """The browser-playable H.264 copy a supervisor watches."""
    return f"review/{sub_id}.mp4"


def poster(sub_id: int) -> str:
    return f"poster/{sub_id}.jpg"


def stills(sub_id: int) -> str:
    """The folder of stills the review UI cuts from the review copy, one per event."""
    return f"stills/{sub_id}"


def still(sub_id: int, ms: int) -> str:
    return f"{stills(sub_id)}/{ms}.jpg"


def derived(sub_id: int) -> tuple[str, ...]:
    """The objects the transcoder writes for ``sub_id`` (the stills come later, on demand)."""
    return (review_copy(sub_id), poster(sub_id))
