"""Names that different sources spell differently and that must still match."""

from __future__ import annotations


def line_key(name: str | None) -> str:
    """A cell line's key for matching a layout to the reference table: 'MOLT-4P' → 'MOLT4P'."""
    return "".join(ch for ch in (name or "").upper() if ch.isalnum())
