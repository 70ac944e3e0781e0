"""Text helpers for Vietnamese names."""

from __future__ import annotations

import unicodedata

# Đ/đ is a letter of its own, not D with a combining mark, so NFD alone does not fold it.
_EXTRA_FOLDS = str.maketrans({"đ": "d", "Đ": "D"})


def fold(text: str) -> str:
    """Lower-case ASCII form for accent-insensitive matching: 'Thanh Hóa' -> 'thanh hoa'."""
    decomposed = unicodedata.normalize("NFD", text.translate(_EXTRA_FOLDS))
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(stripped.lower().split())
