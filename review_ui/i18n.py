"""Message catalogues for the patient pages: one JSON file per language in ``review_ui/i18n/``.

Every string a patient reads is in the catalogues, so another language is one more file. The
language is the one chosen on the page (``?lang=``, then kept in a cookie), else the browser's
``Accept-Language``, else English.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from werkzeug.datastructures import LanguageAccept

FOLDER = Path(__file__).resolve().parent / "i18n"
DEFAULT = "en"
COOKIE = "vot_lang"


@lru_cache(maxsize=1)
def catalogues() -> dict[str, dict[str, str]]:
    """Every catalogue by language tag (the file name), read once."""
    found = {}
    for path in sorted(FOLDER.glob("*.json")):
        with open(path, encoding="utf-8") as fh:
            found[path.stem] = json.load(fh)
    if DEFAULT not in found:
        raise RuntimeError(f"the default catalogue {DEFAULT}.json is missing from {FOLDER}")
    return found


def languages() -> list[tuple[str, str]]:
    """(tag, the language's own name) for the language switch."""
    return [(tag, cat["language.name"]) for tag, cat in catalogues().items()]


def messages(lang: str) -> dict[str, str]:
    """The catalogue of ``lang``, any missing key taken from the default language."""
    return {**catalogues()[DEFAULT], **catalogues().get(lang, {})}


def pick(chosen: str | None, cookie: str | None, accept: LanguageAccept) -> str:
    """The language to show: an explicit choice, else the cookie, else the browser's preference.

    Each accepted language, best first, matches a catalogue by its full tag or else by its
    primary subtag, so ``zh-CN`` and ``zh-TW`` both get ``zh-Hans`` while it is the only Chinese
    catalogue (Werkzeug's ``best_match`` would prefer an exact ``en`` further down the list).
    """
    tags = list(catalogues())
    for candidate in (chosen, cookie):
        if candidate in tags:
            return candidate
    by_lower = {tag.lower(): tag for tag in tags}
    by_primary: dict[str, str] = {}
    for tag in tags:
        by_primary.setdefault(tag.split("-")[0].lower(), tag)
    for value, _quality in accept:  # already sorted best first
        value = value.lower()
        found = by_lower.get(value) or by_primary.get(value.split("-")[0])
        if found:
            return found
    return DEFAULT
