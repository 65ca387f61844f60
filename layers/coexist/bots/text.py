"""Text normalisation shared by keyword matching: what a customer types varies in case, accents,
spacing and punctuation far more than in meaning."""

from __future__ import annotations

import unicodedata

# Marks on letters of these scripts are accents, dropped so "ARRÊT" is "arret"; elsewhere (Thai,
# Devanagari, …) a mark is a vowel or tone that is part of the word: "หยุด" (stop) must not become
# "หยด" (a drop).
_ACCENTED_SCRIPTS_END = 0x0530  # Latin, IPA, Greek, Cyrillic
_EXTENDED_LATIN_GREEK = range(0x1E00, 0x2000)


def _accent_base(char: str) -> bool:
    return ord(char) < _ACCENTED_SCRIPTS_END or ord(char) in _EXTENDED_LATIN_GREEK


def fold(text: str) -> str:
    """Case-folded, accents removed, whitespace collapsed: "  ARRÊT " -> "arret"."""
    kept: list[str] = []
    base = ""
    for char in unicodedata.normalize("NFKD", text.casefold()):
        if unicodedata.combining(char) or unicodedata.category(char) == "Mn":
            if _accent_base(base):
                continue
        else:
            base = char
        kept.append(char)
    return " ".join("".join(kept).split())


def _word_char(char: str) -> bool:
    return char.isalnum() or unicodedata.category(char).startswith("M")


def keyword(text: str) -> str:
    """A whole message reduced to its words: "¡Baja!" -> "baja", "opt-out." -> "opt out"."""
    return " ".join("".join(c if _word_char(c) else " " for c in fold(text)).split())
