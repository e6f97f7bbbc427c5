"""Child processes that die with their parent, so Ctrl-C or a crash leaves no orphans."""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Linux only: the kernel sends SIGTERM to this child when its parent thread exits, even
    # when the parent is killed with SIGKILL and cannot clean up itself.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def limited(memory_mb: int) -> Callable[[], None]:
    """A ``preexec_fn`` capping the child's address space, so a decode bomb fails, not the host.

    The child also dies with its parent.
    """

    def preexec() -> None:
        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        if sys.platform == "linux":
            _die_with_parent()

    return preexec


def descendants(pid: int) -> list[int]:
    """Process ids below ``pid`` (children first), read from /proc; empty where there is none."""
    found: list[int] = []
    queue = [pid]
    while queue:
        parent = queue.pop(0)
        try:
            text = Path(f"/proc/{parent}/task/{parent}/children").read_text()
        except OSError:
            continue
        kids = [int(k) for k in text.split()]
        found.extend(kids)
        queue.extend(kids)
    return found


def kill_tree(pid: int) -> None:
    """SIGKILL ``pid`` and everything below it (an rq work-horse sits in a group of its own)."""
    for target in [*descendants(pid), pid]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(target, signal.SIGKILL)


def child_popen_kwargs() -> dict[str, Any]:
    """Keyword arguments for ``subprocess.Popen`` of a long-lived child of a vot command."""
    preexec: Callable[[], None] | None = _die_with_parent if sys.platform == "linux" else None
    return {"preexec_fn": preexec}
