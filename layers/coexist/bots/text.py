"""Text normalisation shared by keyword matching: what a customer types varies in case, accents,
spacing and punctuation far more than in meaning."""

from __future__ import annotations

import re
import unicodedata

_NOT_WORD = re.compile(r"[\W_]+")


def fold(text: str) -> str:
    """Case-folded, accents removed, whitespace collapsed: "  ARRÊT " -> "arret"."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    without_marks = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(without_marks.split())


def keyword(text: str) -> str:
    """A whole message reduced to its words: "¡Baja!" -> "baja", "opt-out." -> "opt out"."""
    return _NOT_WORD.sub(" ", fold(text)).strip()
