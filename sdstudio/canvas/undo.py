"""Undo/redo of mask edits, keeping only the changed rectangle of each edit.

An entry holds the rectangle and the bytes that are NOT on the mask right now (zlib
compressed: masks are mostly flat, so a rectangle shrinks to a few hundred bytes). Undoing
and redoing are the same operation: swap the stored bytes with the mask's, so one copy per
edit suffices and every restore is byte-exact. The stack drops its oldest entries beyond a
byte budget, so memory stays bounded however long a session paints.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QRect

DEFAULT_BUDGET_BYTES = 256 * 1024 * 1024


@dataclass
class _Edit:
    rect: QRect
    packed: bytes  # zlib of the rectangle's pixels that the swap brings back
    label: str


def _region(mask: np.ndarray, rect: QRect) -> np.ndarray:
    return mask[rect.top() : rect.bottom() + 1, rect.left() : rect.right() + 1]


class UndoStack:
    """Undo and redo stacks of rectangle swaps over one (height, width) uint8 mask."""

    def __init__(self, budget_bytes: int = DEFAULT_BUDGET_BYTES) -> None:
        self._budget = budget_bytes
        self._undo: list[_Edit] = []
        self._redo: list[_Edit] = []

    def push(self, rect: QRect, before: np.ndarray, label: str) -> None:
        """Record an edit of `rect` whose old pixels were `before`; forgets the redo branch."""
        self._undo.append(_Edit(QRect(rect), zlib.compress(before.tobytes(), 1), label))
        self._redo.clear()
        while len(self._undo) > 1 and self.byte_count() > self._budget:
            self._undo.pop(0)

    def undo(self, mask: np.ndarray) -> QRect | None:
        """Put back the pixels before the latest edit; returns the restored rect (None if nothing)."""
        return self._swap(mask, self._undo, self._redo)

    def redo(self, mask: np.ndarray) -> QRect | None:
        """Re-apply the latest undone edit; returns the restored rect (None if nothing)."""
        return self._swap(mask, self._redo, self._undo)

    def _swap(self, mask: np.ndarray, source: list[_Edit], target: list[_Edit]) -> QRect | None:
        if not source:
            return None
        edit = source.pop()
        region = _region(mask, edit.rect)
        current = zlib.compress(region.tobytes(), 1)
        region[:] = np.frombuffer(zlib.decompress(edit.packed), np.uint8).reshape(region.shape)
        target.append(_Edit(edit.rect, current, edit.label))
        return QRect(edit.rect)

    def clear(self) -> None:
        self._undo.clear()
        self._redo.clear()

    def can_undo(self) -> bool:
        return bool(self._undo)

    def can_redo(self) -> bool:
        return bool(self._redo)

    def undo_label(self) -> str:
        return self._undo[-1].label if self._undo else ""

    def redo_label(self) -> str:
        return self._redo[-1].label if self._redo else ""

    def byte_count(self) -> int:
        """Bytes held by the stored pixels of both stacks (the compressed payloads)."""
        return sum(len(e.packed) for e in self._undo) + sum(len(e.packed) for e in self._redo)
