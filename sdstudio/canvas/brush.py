"""The round mask brush: a capsule from one mouse position to the next, so fast drags leave no gaps.

A segment is stamped analytically: every pixel whose centre lies within the brush radius of
the segment gets the brush value, so the stroke is continuous however far apart two mouse
events are. Painting keeps the maximum (erasing the minimum) of old and new values, so a
soft brush does not build up where consecutive segments overlap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QPointF, QRect

MIN_SIZE = 1
MAX_SIZE = 1024


@dataclass(frozen=True)
class Brush:
    """`size` is the diameter in image pixels; `hardness` 1 is a crisp edge, 0 fades from the centre."""

    size: float = 48.0
    hardness: float = 1.0

    @property
    def radius(self) -> float:
        return max(self.size, MIN_SIZE) / 2.0

    def resized(self, size: float) -> Brush:
        return Brush(min(max(size, MIN_SIZE), MAX_SIZE), self.hardness)


def segment_rect(p0: QPointF, p1: QPointF, brush: Brush, width: int, height: int) -> QRect:
    """The pixel rectangle a segment may touch, clipped to the image (empty if outside)."""
    r = brush.radius
    left = int(np.floor(min(p0.x(), p1.x()) - r))
    top = int(np.floor(min(p0.y(), p1.y()) - r))
    right = int(np.ceil(max(p0.x(), p1.x()) + r))
    bottom = int(np.ceil(max(p0.y(), p1.y()) + r))
    return QRect(left, top, right - left + 1, bottom - top + 1).intersected(QRect(0, 0, width, height))


def coverage(rect: QRect, p0: QPointF, p1: QPointF, brush: Brush) -> np.ndarray:
    """Brush value 0..255 (uint8) for each pixel of `rect` from the segment p0 -> p1."""
    ys = np.arange(rect.top(), rect.top() + rect.height(), dtype=np.float32)[:, None] + 0.5
    xs = np.arange(rect.left(), rect.left() + rect.width(), dtype=np.float32)[None, :] + 0.5
    ax, ay = np.float32(p0.x()), np.float32(p0.y())
    dx, dy = np.float32(p1.x() - p0.x()), np.float32(p1.y() - p0.y())
    length2 = dx * dx + dy * dy
    if length2 > 0:
        t = np.clip(((xs - ax) * dx + (ys - ay) * dy) / length2, 0.0, 1.0)
        ex, ey = xs - (ax + t * dx), ys - (ay + t * dy)
    else:
        ex, ey = xs - ax, ys - ay
    distance = np.sqrt(ex * ex + ey * ey)
    radius = np.float32(brush.radius)
    if brush.hardness >= 1.0:
        return np.where(distance < radius, np.uint8(255), np.uint8(0))
    # Full strength inside hardness*radius, then a smoothstep down to 0 at the radius.
    inner = radius * np.float32(max(brush.hardness, 0.0))
    edge = np.clip((radius - distance) / (radius - inner), 0.0, 1.0)
    value = edge * edge * (3.0 - 2.0 * edge)
    return (value * 255.0 + 0.5).astype(np.uint8)


def stamp(mask: np.ndarray, p0: QPointF, p1: QPointF, brush: Brush, erase: bool) -> QRect:
    """Paint (or erase) the segment into the (height, width) uint8 `mask`; returns the touched rect."""
    # A long diagonal segment has a huge bounding box but a thin capsule: cut it into
    # pieces a few radii long so the work stays proportional to the painted area.
    step = 4.0 * brush.radius + 8.0
    delta = p1 - p0
    pieces = max(1, int(np.ceil(np.hypot(delta.x(), delta.y()) / step)))
    touched = QRect()
    for k in range(pieces):
        a, b = p0 + delta * (k / pieces), p0 + delta * ((k + 1) / pieces)
        touched = touched.united(_stamp_piece(mask, a, b, brush, erase))
    return touched


def _stamp_piece(mask: np.ndarray, p0: QPointF, p1: QPointF, brush: Brush, erase: bool) -> QRect:
    height, width = mask.shape
    rect = segment_rect(p0, p1, brush, width, height)
    if rect.isEmpty():
        return rect
    region = mask[rect.top() : rect.bottom() + 1, rect.left() : rect.right() + 1]
    value = coverage(rect, p0, p1, brush)
    if erase:
        np.minimum(region, 255 - value, out=region)
    else:
        np.maximum(region, value, out=region)
    return rect
