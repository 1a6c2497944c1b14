"""The masking canvas: Qt painting of an image layer and a mask layer. Knows no engine.

`Canvas` is the widget; it hands out a PIL RGB image and a PIL "L" mask (255 = repaint).
"""

from sdstudio.canvas.brush import Brush
from sdstudio.canvas.document import CanvasDocument
from sdstudio.canvas.widget import Canvas

__all__ = ["Brush", "Canvas", "CanvasDocument"]
