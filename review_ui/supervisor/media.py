"""Videos, posters and event stills, only for a reviewer of the patient's clinic; all audited.

Local files are sent with HTTP range support (the player seeks with range requests); on S3 the
browser is redirected to a short-lived signed URL. Stills are cut from the review copy with
ffmpeg on first request and kept in the store under ``stills/<id>/<ms>.jpg``.
"""

from __future__ import annotations

import logging
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from flask import Blueprint, abort, g, redirect, request, send_file
from werkzeug.exceptions import HTTPException

from review_ui import auth, web
from vot.db import audit
from vot.media import ffmpeg_exe
from vot.review import item as review_item
from vot.storage import Storage, keys

logger = logging.getLogger(__name__)
bp = Blueprint("media", __name__, url_prefix="/review")
SIGNED_URL_S = 300
STILL_WIDTH = 320


@bp.before_request
def reviewers_only() -> Any:
    return auth.require_roles(*auth.REVIEW_ROLES)


def _checked(sub_id: int, action: str, **detail: Any) -> review_item.ItemDetail:
    """The item if the reviewer may see it (else 404), with the access written to the audit log.

    Raises:
        Gone: the video was deleted under the retention policy or erased (HTTP 410).
    """
    with web.engine().begin() as conn:
        found = review_item.item(conn, g.user, sub_id, history=False)
        audit(conn, g.user.username, action, f"submission:{sub_id}", **detail)
    if found.video.gone:
        raise Gone(found.video.message)
    return found


class Gone(HTTPException):
    """The video is deleted for good; the page says when and why instead of a bare 404."""

    code = 410

    def __init__(self, message: str) -> None:
        super().__init__(message)


@bp.errorhandler(Gone)
def gone(exc: Gone) -> Any:
    return web.error(410, exc.description or "This video was deleted.")


def _serve(key: str | None, mimetype: str) -> Any:
    if not key:
        abort(404)
    store = web.storage()
    path = store.local_path(key)
    if path is None:
        url = store.signed_url(key, SIGNED_URL_S)
        return redirect(url) if url else abort(404)
    if not path.is_file():
        abort(404)
    response = send_file(path, mimetype=mimetype, conditional=True, etag=True)
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/<int:sub_id>/video")
def video(sub_id: int) -> Any:
    found = _checked(sub_id, "video.view", range=request.headers.get("Range"))
    return _serve(found.review_key, "video/mp4")


@bp.get("/<int:sub_id>/poster.jpg")
def poster(sub_id: int) -> Any:
    return _serve(_checked(sub_id, "video.poster").poster_key, "image/jpeg")


@bp.get("/<int:sub_id>/still/<int:ms>.jpg")
def still(sub_id: int, ms: int) -> Any:
    found = _checked(sub_id, "video.still", at_ms=ms)
    # Only the moments the page offers: no one can make the server run ffmpeg at will.
    if ms not in found.still_times_ms or not found.review_key:
        abort(404)
    key = keys.still(sub_id, ms)
    store = web.storage()
    if not store.exists(key) and not extract_still(store, found.review_key, key, ms / 1000):
        abort(404)
    return _serve(key, "image/jpeg")


def extract_still(store: Storage, video_key: str, still_key: str, at_s: float) -> bool:
    """Cut one JPEG frame at ``at_s`` from the stored video; False when there is none there."""
    with tempfile.TemporaryDirectory(prefix="vot-still-") as tmp:
        src = store.local_path(video_key)
        if src is None:
            src = Path(tmp) / "review.mp4"
            store.get_file(video_key, src)
        out = Path(tmp) / "still.jpg"
        cmd = [
            ffmpeg_exe(web.settings().ffmpeg),
            "-hide_banner",
            "-nostdin",
            "-loglevel",
            "error",
            "-ss",
            f"{at_s:.3f}",
            "-i",
            str(src),
            "-frames:v",
            "1",
            "-vf",
            f"scale={STILL_WIDTH}:-2",
            "-q:v",
            "5",
            "-y",
            str(out),
        ]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=30)
        except subprocess.TimeoutExpired:
            logger.warning("ffmpeg took over 30 s for a still of %s", video_key)
            return False
        if proc.returncode != 0 or not out.is_file() or out.stat().st_size == 0:
            # Past the end of the video ffmpeg succeeds but writes nothing.
            logger.warning(
                "no still of %s at %.3f s (ffmpeg %s): %s",
                video_key,
                at_s,
                proc.returncode,
                proc.stderr.strip()[-300:],
            )
            return False
        store.put_file(still_key, out, "image/jpeg")
    return True
