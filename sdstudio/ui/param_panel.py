"""The parameter panel, built from the parameter table (`engine/parameters.py`): one row per
parameter with a control, its label, bounds, step and tooltip from the table, shown only in the
modes that use it.

`request_fields()` / `apply_fields()` speak the table's parameter names, so "reuse parameters"
from the history, a dropped PNG and the settings file all fill it the same way. Parameters
whose default comes from the model (size, CFG) follow the loaded model until the person
changes them; `request_fields()` gives None for those, and the engine fills in the model's value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import QRegularExpression, QSignalBlocker, QSize, Signal
from PySide6.QtGui import QFocusEvent, QRegularExpressionValidator
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

from sdstudio.engine.parameters import (
    BY_NAME,
    PARAMETERS,
    Control,
    Mode,
    Param,
    applies,
    defaults,
    snap,
)
from sdstudio.engine.request import ModelInfo
from sdstudio.ui.icons import icon
from sdstudio.ui.slider_spin import SliderSpin

SIZE_PRESETS = [(512, 512), (768, 768), (1024, 1024), (512, 768), (768, 512), (128, 128)]
# The parameters this panel edits (the prompts have their own panel).
PANEL_FIELDS = tuple(p.name for p in PARAMETERS if p.control is not Control.NONE)
# Shown before the model says otherwise.
_FALLBACK_MODEL_DEFAULTS = {"width": 512, "height": 512, "cfg_scale": 7.0}


class ListedCombo(QComboBox):
    """A parameter's fixed choices, then the names `lister` gives (the backend's upscaler
    models), listed afresh whenever it opens or takes the keyboard focus, as files come and go.
    A value set from elsewhere (a reused image) stays listed even when nothing lists it."""

    def __init__(self, choices: Sequence[str]) -> None:
        super().__init__()
        self._choices = tuple(choices)
        self.lister: Callable[[], Sequence[str]] = lambda: ()
        self.addItems(self._choices)

    def refresh(self, current: str | None = None) -> None:
        """List the names again, then choose `current` (default: what is chosen now)."""
        current = self.currentText() if current is None else current
        names = [n for n in dict.fromkeys(self.lister()) if n not in self._choices]
        if current not in (*self._choices, *names):
            names.append(current)
        with QSignalBlocker(self):
            while self.count() > len(self._choices):
                self.removeItem(self.count() - 1)
            if names:  # the installed models apart from the methods
                self.insertSeparator(self.count())
            self.addItems(names)
            self.setCurrentText(current)

    def set_value(self, text: str) -> None:
        if self.findText(text) < 0:
            self.refresh(text)
        else:
            self.setCurrentText(text)

    def showPopup(self) -> None:
        self.refresh()
        super().showPopup()

    def focusInEvent(self, event: QFocusEvent) -> None:
        self.refresh()
        super().focusInEvent(event)


class ParameterPanel(QWidget):
    # The mode changed (txt2img / img2img / inpaint): (Mode).
    mode_changed = Signal(object)
    # "Size from image" was pressed: the owner of the init image answers with set_size().
    size_from_image = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        form = QFormLayout(self)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self._form = form
        self.controls: dict[str, QWidget] = {}
        self._labels: dict[str, QLabel] = {}
        # Parameters that follow the loaded model until the person sets them.
        self._auto: set[str] = {p.name for p in PARAMETERS if p.from_model}
        self._applying = False
        self._model_info: ModelInfo | None = None
        self._last_seed: int | None = None
        self.size_preset = QComboBox()
        self.swap = self._tool_button("swap", "Swap width and height")
        self.from_image = QToolButton()
        self.from_image.setText("From image")
        self.from_image.setToolTip("Set width and height to the init image's size (multiples of 8)")
        self.random_seed = self._tool_button("dice", "Random seed (-1)")
        self.reuse_seed = self._tool_button("recycle", "Reuse the last image's seed")
        for param in PARAMETERS:
            if param.control is not Control.NONE:
                self._add(param)
        self.reuse_seed.setEnabled(False)
        self.swap.clicked.connect(self._swap_size)
        self.from_image.clicked.connect(self.size_from_image)
        self.size_preset.activated.connect(self._apply_preset)
        self.random_seed.clicked.connect(lambda: self.seed.setText("-1"))
        self.reuse_seed.clicked.connect(self._reuse_seed)
        self.mode.currentIndexChanged.connect(self._mode_changed)
        self.controls["inpaint_only_masked"].toggled.connect(self.controls["inpaint_padding"].setEnabled)
        self.apply_fields(self.default_fields())
        self._mode_changed()

    # ---- the controls -----------------------------------------------------------------

    @property
    def mode(self) -> QComboBox:
        return self.controls["mode"]  # type: ignore[return-value]

    @property
    def sampler(self) -> QComboBox:
        return self.controls["sampler"]  # type: ignore[return-value]

    @property
    def seed(self) -> QLineEdit:
        return self.controls["seed"]  # type: ignore[return-value]

    def _add(self, param: Param) -> None:
        widget = self._control(param)
        widget.setToolTip(param.tooltip)
        self.controls[param.name] = widget
        extra = self._extras(param.name, widget)
        label = QLabel(param.label)
        label.setBuddy(widget)
        label.setToolTip(param.tooltip)
        self._form.addRow(label, extra or widget)
        self._labels[param.name] = label
        if param.name == "height":
            self._add_size_row()

    def _control(self, param: Param) -> QWidget:
        if param.control is Control.COMBO and param.also is not None:
            return ListedCombo(param.choices)
        if param.control is Control.COMBO:
            combo = QComboBox()
            if param.kind is Mode:
                for mode in Mode:
                    combo.addItem(mode.value, mode)
            combo.addItems(param.choices)
            return combo
        if param.control is Control.CHECK:
            return QCheckBox()
        if param.control is Control.SEED:
            edit = QLineEdit()
            edit.setValidator(QRegularExpressionValidator(QRegularExpression(r"-1|\d{0,10}")))
            edit.setPlaceholderText("-1 (random)")
            return edit
        slider = SliderSpin(param.minimum or 0, param.maximum or 0, step=param.step, decimals=param.decimals)
        if param.from_model:
            slider.value_changed.connect(lambda _value, name=param.name: self._set_by_person(name))
        return slider

    def _extras(self, name: str, widget: QWidget) -> QHBoxLayout | None:
        if name != "seed":
            return None
        row = QHBoxLayout()
        row.addWidget(widget, 1)
        row.addWidget(self.random_seed)
        row.addWidget(self.reuse_seed)
        return row

    def _add_size_row(self) -> None:
        self.size_preset.addItem("Size presets…")
        self.size_preset.addItem("The model's native size", None)
        for w, h in SIZE_PRESETS:
            note = "  (built-in model)" if (w, h) == (128, 128) else ""
            self.size_preset.addItem(f"{w} × {h}{note}", (w, h))
        self.size_preset.setToolTip("Set width and height to a common size, or back to the model's own")
        sizes = QHBoxLayout()
        sizes.addWidget(self.size_preset, 1)
        sizes.addWidget(self.from_image)
        sizes.addWidget(self.swap)
        label = QLabel("Si&ze:")
        label.setBuddy(self.size_preset)
        self._form.addRow(label, sizes)

    # ---- the request's fields ---------------------------------------------------------

    @staticmethod
    def default_fields() -> dict[str, Any]:
        return {name: value for name, value in defaults().items() if name in PANEL_FIELDS}

    def request_fields(self) -> dict[str, Any]:
        """The panel's values by parameter name; None for those that follow the model."""
        fields = {name: self._value(BY_NAME[name]) for name in PANEL_FIELDS}
        return fields | {name: None for name in self._auto}

    def apply_fields(self, fields: dict[str, Any]) -> None:
        """Set the controls by parameter name; other keys are ignored, so a whole
        `fields_from_infotext(...)` result can be passed in. None for a model-decided
        parameter makes it follow the model again. Raises ValueError/TypeError for a value
        the control cannot show."""
        self._applying = True
        try:
            for name in PANEL_FIELDS:
                if name not in fields:
                    continue
                value = fields[name]
                if value is None and BY_NAME[name].from_model:
                    self._auto.add(name)
                    continue
                self._set_value(BY_NAME[name], value)
                self._auto.discard(name)
        finally:
            self._applying = False
        self.show_model_defaults(self._model_info)
        self.controls["inpaint_padding"].setEnabled(self.controls["inpaint_only_masked"].isChecked())

    def show_model_defaults(self, info: ModelInfo | None) -> None:
        """Show the model's own values in the controls that follow it."""
        self._model_info = info
        self._applying = True
        try:
            for name in self._auto:
                value = info.model_default(name) if info else _FALLBACK_MODEL_DEFAULTS[name]
                self._set_value(BY_NAME[name], value)
        finally:
            self._applying = False

    def follow_model(self, info: ModelInfo | None) -> None:
        """A new model: every model-decided parameter follows it again."""
        self._auto = {p.name for p in PARAMETERS if p.from_model}
        self.show_model_defaults(info)

    def set_size(self, width: int, height: int) -> None:
        """Width and height as the person's own choice, snapped to 8 within the table's range."""
        for name, value in (("width", width), ("height", height)):
            param = BY_NAME[name]
            self.apply_fields({name: int(min(max(snap(value, param.step), param.minimum), param.maximum))})

    def current_mode(self) -> Mode:
        return Mode(self.mode.currentData())

    def set_samplers(self, names: list[str]) -> None:
        """Offer the samplers the backend can run, keeping the current choice."""
        current = self.sampler.currentText()
        self.sampler.clear()
        self.sampler.addItems(names)
        self._select_sampler(current)

    def set_upscaler_lister(self, lister: Callable[[], Sequence[str]]) -> None:
        """Where the hires upscaler's choices beyond the built-in methods come from (the
        backend's upscaler models, by the names a prompt or A1111's text gives them)."""
        self.controls["hires_upscaler"].lister = lister  # type: ignore[attr-defined]

    def refresh_upscalers(self) -> None:
        """List the upscaler models again (they changed), unless the list is open now."""
        combo = self.controls["hires_upscaler"]
        if not combo.view().isVisible():  # type: ignore[attr-defined]
            combo.refresh()  # type: ignore[attr-defined]

    def set_last_seed(self, seed: int) -> None:
        self._last_seed = seed
        self.reuse_seed.setEnabled(True)
        self.reuse_seed.setToolTip(f"Reuse the last image's seed ({seed})")

    # ---- internals --------------------------------------------------------------------

    def _value(self, param: Param) -> Any:
        widget = self.controls[param.name]
        if param.kind is Mode:
            return self.current_mode()
        if param.control is Control.COMBO:
            return widget.currentText()  # type: ignore[attr-defined]
        if param.control is Control.CHECK:
            return widget.isChecked()  # type: ignore[attr-defined]
        if param.control is Control.SEED:
            text = widget.text().strip()  # type: ignore[attr-defined]
            return int(text) if text not in ("", "-") else -1
        value = widget.value()  # type: ignore[attr-defined]
        return float(value) if param.kind is float else value

    def _set_value(self, param: Param, value: Any) -> None:
        widget = self.controls[param.name]
        if param.kind is Mode:
            self.mode.setCurrentIndex(self.mode.findData(Mode(value)))
        elif isinstance(widget, ListedCombo):
            widget.set_value(str(value))
        elif param.choices:
            widget.setCurrentText(str(value))  # type: ignore[attr-defined]
        elif param.control is Control.COMBO:
            self._select_sampler(str(value))
        elif param.control is Control.CHECK:
            widget.setChecked(bool(value))  # type: ignore[attr-defined]
        elif param.control is Control.SEED:
            widget.setText(str(int(value)))  # type: ignore[attr-defined]
        else:
            widget.set_value(float(value))  # type: ignore[attr-defined]

    def _set_by_person(self, name: str) -> None:
        if not self._applying:
            self._auto.discard(name)

    def _tool_button(self, icon_name: str, tip: str) -> QToolButton:
        button = QToolButton()
        button.setIcon(icon(icon_name))
        button.setIconSize(QSize(18, 18))
        button.setToolTip(tip)
        button.setAccessibleName(tip)
        return button

    def _mode_changed(self) -> None:
        mode = self.current_mode()
        for name, label in self._labels.items():
            self._form.setRowVisible(label, applies(BY_NAME[name], mode))
        self.mode_changed.emit(mode)

    def _select_sampler(self, name: str) -> None:
        # A PNG may name a sampler this backend lacks: show it, the engine will explain.
        if self.sampler.findText(name) < 0:
            self.sampler.addItem(name)
        self.sampler.setCurrentText(name)

    def _swap_size(self) -> None:
        width, height = self.controls["width"], self.controls["height"]
        w, h = width.value(), height.value()  # type: ignore[attr-defined]
        width.set_value(h)  # type: ignore[attr-defined]
        height.set_value(w)  # type: ignore[attr-defined]

    def _apply_preset(self, index: int) -> None:
        if index == 1:
            self.apply_fields({"width": None, "height": None})
        elif (size := self.size_preset.itemData(index)) is not None:
            self.controls["width"].set_value(size[0])  # type: ignore[attr-defined]
            self.controls["height"].set_value(size[1])  # type: ignore[attr-defined]
        self.size_preset.setCurrentIndex(0)

    def _reuse_seed(self) -> None:
        if self._last_seed is not None:
            self.seed.setText(str(self._last_seed))
