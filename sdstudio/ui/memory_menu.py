"""Model ▸ Memory: VAE tiling, attention slicing and offload, each automatic unless chosen."""

from __future__ import annotations

import dataclasses
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QMenu, QWidget

from sdstudio.engine.memory import OFFLOAD_MODES, MemoryOptions

_SWITCH_CHOICES = (("Automatic", None), ("On", True), ("Off", False))
_OFFLOAD_LABELS = {
    "auto": "Automatic (only when the GPU is short)",
    "none": "None: the whole model on the GPU",
    "model": "Model CPU offload (less VRAM, a little slower)",
    "sequential": "Sequential offload (least VRAM, much slower)",
}


class MemoryMenu(QMenu):
    # The person changed a memory setting: (MemoryOptions).
    changed = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("M&emory", parent)
        self.setToolTipsVisible(True)
        self._options = MemoryOptions()
        self._actions: dict[tuple[str, Any], QAction] = {}
        tiling = self._group("VAE &tiling", "vae_tiling", _SWITCH_CHOICES,
                             "Decode large images in tiles so the decoder's memory stays bounded")
        slicing = self._group("&Attention slicing", "attention_slicing", _SWITCH_CHOICES,
                              "Compute attention a slice at a time (helps on Apple GPUs with little memory)")
        offload = self._group("&Offload", "offload", [(_OFFLOAD_LABELS[m], m) for m in OFFLOAD_MODES],
                              "Keep parts of the model in RAM and move them to the GPU when they run (CUDA)")
        for menu in (tiling, slicing, offload):
            self.addMenu(menu)
        self.set_options(self._options)

    def options(self) -> MemoryOptions:
        return self._options

    def set_options(self, options: MemoryOptions) -> None:
        """Show `options` (e.g. from the settings file) without emitting `changed`."""
        self._options = options
        for (field, value), action in self._actions.items():
            action.setChecked(getattr(options, field) == value and type(getattr(options, field)) is type(value))

    def _group(self, title: str, field: str, choices: Any, tip: str) -> QMenu:
        menu = QMenu(title, self)
        menu.setToolTip(tip)
        group = QActionGroup(menu)
        for label, value in choices:
            action = menu.addAction(label)
            action.setCheckable(True)
            group.addAction(action)
            action.triggered.connect(lambda _=False, f=field, v=value: self._choose(f, v))
            self._actions[field, value] = action
        return menu

    def _choose(self, field: str, value: Any) -> None:
        self._options = dataclasses.replace(self._options, **{field: value})
        self.changed.emit(self._options)
