"""The parameter panel: mode, sampler, steps, CFG scale, size, batch, seed, strength, mask.

`request_fields()` / `apply_fields()` speak GenerationRequest field names, so "reuse
parameters" from the history, a dropped PNG and the settings file all fill it the same way.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QRegularExpression, QSize, Signal
from PySide6.QtGui import QRegularExpressionValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QToolButton,
    QWidget,
)

from sdstudio.engine.request import GenerationRequest, Mode
from sdstudio.ui.icons import icon
from sdstudio.ui.slider_spin import SliderSpin

# Shown until the engine says which samplers this machine can run.
DEFAULT_SAMPLERS = ["Euler a", "Euler", "DPM++ 2M", "DPM++ 2M Karras", "DDIM", "Heun", "LMS", "UniPC"]
SIZE_PRESETS = [(512, 512), (768, 768), (1024, 1024), (512, 768), (768, 512), (128, 128)]
_DEFAULTS = GenerationRequest(prompt="")
# The GenerationRequest fields this panel edits (prompt and images come from elsewhere).
PANEL_FIELDS = (
    "mode",
    "sampler",
    "steps",
    "cfg_scale",
    "strength",
    "width",
    "height",
    "batch_size",
    "batch_count",
    "seed",
    "mask_blur",
    "inpaint_only_masked",
    "inpaint_padding",
)


class ParameterPanel(QWidget):
    # The mode changed (txt2img / img2img / inpaint): (Mode).
    mode_changed = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        form = QFormLayout(self)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self._form = form

        self.mode = QComboBox()
        for mode in Mode:
            self.mode.addItem(mode.value, mode)
        self._row("Mo&de:", self.mode)

        self.sampler = QComboBox()
        self.sampler.addItems(DEFAULT_SAMPLERS)
        self._row("S&ampler:", self.sampler)

        self.steps = SliderSpin(1, 150)
        self._row("&Steps:", self.steps)
        self.cfg_scale = SliderSpin(1, 30, step=0.5, decimals=1)
        self._row("&CFG scale:", self.cfg_scale)
        self.strength = SliderSpin(0, 1, step=0.01, decimals=2)
        self._strength_row = self._row("S&trength:", self.strength)

        self.width_ = SliderSpin(64, 2048, step=8)
        self._row("&Width:", self.width_)
        self.height_ = SliderSpin(64, 2048, step=8)
        self._row("&Height:", self.height_)
        self.size_preset = QComboBox()
        self.size_preset.addItem("Size presets…")
        for w, h in SIZE_PRESETS:
            note = "  (built-in model)" if (w, h) == (128, 128) else ""
            self.size_preset.addItem(f"{w} × {h}{note}", (w, h))
        self.size_preset.setToolTip("Set width and height to a common size")
        self.swap = self._tool_button("swap", "Swap width and height")
        sizes = QHBoxLayout()
        sizes.addWidget(self.size_preset, 1)
        sizes.addWidget(self.swap)
        self._row("Si&ze:", self.size_preset, sizes)

        self.batch_size = SliderSpin(1, 8)
        self._row("&Batch size:", self.batch_size)
        self.batch_count = SliderSpin(1, 16)
        self._row("Batch c&ount:", self.batch_count)

        self.seed = QLineEdit()
        self.seed.setValidator(QRegularExpressionValidator(QRegularExpression(r"-1|\d{0,19}")))
        self.seed.setPlaceholderText("-1 (random)")
        self.seed.setToolTip("Seed of the first image; -1 picks a random one")
        self.random_seed = self._tool_button("dice", "Random seed (-1)")
        self.reuse_seed = self._tool_button("recycle", "Reuse the last image's seed")
        self.reuse_seed.setEnabled(False)
        seeds = QHBoxLayout()
        seeds.addWidget(self.seed, 1)
        seeds.addWidget(self.random_seed)
        seeds.addWidget(self.reuse_seed)
        self._row("S&eed:", self.seed, seeds)

        self.mask_blur = SliderSpin(0, 64)
        self._mask_blur_row = self._row("Mask b&lur:", self.mask_blur)
        self.only_masked = QCheckBox("Inpaint only the mas&ked area")
        self._only_masked_row = self._row("Area:", self.only_masked)
        self.padding = SliderSpin(0, 256, step=4)
        self._padding_row = self._row("Padd&ing:", self.padding)

        self._last_seed: int | None = None
        self.swap.clicked.connect(self._swap_size)
        self.size_preset.activated.connect(self._apply_preset)
        self.random_seed.clicked.connect(lambda: self.seed.setText("-1"))
        self.reuse_seed.clicked.connect(self._reuse_seed)
        self.mode.currentIndexChanged.connect(self._mode_changed)
        self.only_masked.toggled.connect(self.padding.setEnabled)
        self.apply_fields(self.default_fields())
        self._mode_changed()

    # ---- the request's fields ---------------------------------------------------------

    @staticmethod
    def default_fields() -> dict[str, Any]:
        return {name: getattr(_DEFAULTS, name) for name in PANEL_FIELDS}

    def request_fields(self) -> dict[str, Any]:
        """The panel's values as GenerationRequest keyword arguments."""
        seed = self.seed.text().strip()
        return {
            "mode": self.current_mode(),
            "sampler": self.sampler.currentText(),
            "steps": self.steps.value(),
            "cfg_scale": float(self.cfg_scale.value()),
            "strength": float(self.strength.value()),
            "width": self.width_.value(),
            "height": self.height_.value(),
            "batch_size": self.batch_size.value(),
            "batch_count": self.batch_count.value(),
            "seed": int(seed) if seed not in ("", "-") else -1,
            "mask_blur": self.mask_blur.value(),
            "inpaint_only_masked": self.only_masked.isChecked(),
            "inpaint_padding": self.padding.value(),
        }

    def apply_fields(self, fields: dict[str, Any]) -> None:
        """Set the widgets from GenerationRequest field names; other keys are ignored, so a
        whole `request_fields_from_infotext(...)` result can be passed in."""
        sliders = {
            "steps": self.steps,
            "cfg_scale": self.cfg_scale,
            "strength": self.strength,
            "width": self.width_,
            "height": self.height_,
            "batch_size": self.batch_size,
            "batch_count": self.batch_count,
            "mask_blur": self.mask_blur,
            "inpaint_padding": self.padding,
        }
        for name, widget in sliders.items():
            if name in fields:
                widget.set_value(fields[name])
        if "mode" in fields:
            self.mode.setCurrentIndex(self.mode.findData(Mode(fields["mode"])))
        if "sampler" in fields:
            self._select_sampler(str(fields["sampler"]))
        if "seed" in fields:
            self.seed.setText(str(int(fields["seed"])))
        if "inpaint_only_masked" in fields:
            self.only_masked.setChecked(bool(fields["inpaint_only_masked"]))
            self.padding.setEnabled(self.only_masked.isChecked())

    def current_mode(self) -> Mode:
        return Mode(self.mode.currentData())

    def set_samplers(self, names: list[str]) -> None:
        """Offer the samplers this machine can run, keeping the current choice."""
        current = self.sampler.currentText()
        self.sampler.clear()
        self.sampler.addItems(names)
        self._select_sampler(current)

    def set_last_seed(self, seed: int) -> None:
        self._last_seed = seed
        self.reuse_seed.setEnabled(True)
        self.reuse_seed.setToolTip(f"Reuse the last image's seed ({seed})")

    # ---- internals --------------------------------------------------------------------

    def _row(self, text: str, field: QWidget, layout: QHBoxLayout | None = None) -> QLabel:
        label = QLabel(text)
        label.setBuddy(field)
        if layout is None:
            self._form.addRow(label, field)
        else:
            self._form.addRow(label, layout)
        return label

    def _tool_button(self, icon_name: str, tip: str) -> QToolButton:
        button = QToolButton()
        button.setIcon(icon(icon_name))
        button.setIconSize(QSize(18, 18))
        button.setToolTip(tip)
        button.setAccessibleName(tip)
        return button

    def _mode_changed(self) -> None:
        mode = self.current_mode()
        self._form.setRowVisible(self._strength_row, mode is not Mode.TXT2IMG)
        for row in (self._mask_blur_row, self._only_masked_row, self._padding_row):
            self._form.setRowVisible(row, mode is Mode.INPAINT)
        self.mode_changed.emit(mode)

    def _select_sampler(self, name: str) -> None:
        # A PNG may name a sampler this machine lacks: show it, the engine will explain.
        if self.sampler.findText(name) < 0:
            self.sampler.addItem(name)
        self.sampler.setCurrentText(name)

    def _swap_size(self) -> None:
        w, h = self.width_.value(), self.height_.value()
        self.width_.set_value(h)
        self.height_.set_value(w)

    def _apply_preset(self, index: int) -> None:
        size = self.size_preset.itemData(index)
        if size is not None:
            self.width_.set_value(size[0])
            self.height_.set_value(size[1])
        self.size_preset.setCurrentIndex(0)

    def _reuse_seed(self) -> None:
        if self._last_seed is not None:
            self.seed.setText(str(self._last_seed))

