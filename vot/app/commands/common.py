"""What every command module shares: argument types, parser registration, a ready database."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine

from vot.config import Settings

Command = Callable[[Settings, argparse.Namespace], int]
Subparsers = Any  # argparse's _SubParsersAction, which it does not export


def a_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from None


def a_time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an ISO 8601 time, got {text!r}") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError("the time needs a UTC offset, e.g. +08:00")
    return value


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def add(sub: Subparsers, name: str, fn: Command, help_: str) -> argparse.ArgumentParser:
    """A sub-command ``name`` that runs ``fn``."""
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help_, description=help_)
    parser.set_defaults(fn=fn)
    return parser


def group(sub: Subparsers, name: str, help_: str, dest: str, metavar: str = "ACTION") -> Subparsers:
    """A command with actions of its own (``vot patient add``, ``vot patient link``, ...)."""
    return sub.add_parser(name, help=help_).add_subparsers(
        dest=dest, required=True, metavar=metavar
    )


def quiet_native_logs() -> None:
    # MediaPipe and TFLite log through glog/absl to stderr; keep only their errors.
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def upgraded(settings: Settings) -> Engine:
    """The database engine, its schema created or upgraded first."""
    from vot.db import get_engine
    from vot.migrations import upgrade

    engine = get_engine(settings)
    upgrade(engine)
    return engine


def current(settings: Settings) -> Engine:
    """The database engine of a command that must change nothing, the schema included.

    Raises:
        RuntimeError: the schema is not the newest (the message says what to run).
    """
    from vot.db import get_engine
    from vot.migrations import HEAD, current_version

    engine = get_engine(settings)
    if current_version(engine) != HEAD:
        raise RuntimeError("the database schema is not current; run `vot db upgrade` first")
    return engine
