"""A slider and a spin box that show one value: drag for speed, type for precision."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QSlider,
    QSpinBox,
    QWidget,
)


class SliderSpin(QWidget):
    """An int (decimals=0) or float value in [minimum, maximum], moved in `step`s.

    Integers typed into the spin box snap to the nearest multiple of `step` (sizes to 8);
    floats keep their typed precision (a CFG of 7.3 from a PNG stays 7.3), the slider just
    shows the nearest step.
    The spin box is the focus proxy, so a label's mnemonic (buddy) lands on it.
    """

    # The value changed, by the slider, the spin box or set_value: (new value).
    value_changed = Signal(object)

    def __init__(
        self,
        minimum: float,
        maximum: float,
        step: float = 1,
        decimals: int = 0,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._step = step
        self._minimum = minimum
        self._decimals = decimals
        # The slider counts steps from the minimum: integers whatever the value's type.
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, round((maximum - minimum) / step))
        self.slider.setPageStep(max(1, self.slider.maximum() // 10))
        self.slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # one tab stop per value
        if decimals:
            self.spin: QSpinBox | QDoubleSpinBox = QDoubleSpinBox()
            self.spin.setDecimals(decimals)
        else:
            self.spin = QSpinBox()
        self.spin.setRange(minimum, maximum)
        self.spin.setSingleStep(step)
        self.spin.setKeyboardTracking(False)  # snap when typing is done, not on each digit
        self.spin.setCorrectionMode(QAbstractSpinBox.CorrectionMode.CorrectToNearestValue)
        self.spin.setMinimumWidth(self.spin.fontMetrics().horizontalAdvance("00000.00") + 24)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.spin)
        self.setFocusProxy(self.spin)
        self.slider.valueChanged.connect(self._slider_moved)
        self.spin.valueChanged.connect(self._spin_changed)

    def value(self) -> float | int:
        return self._cast(self.spin.value())

    def set_value(self, value: float) -> None:
        self.spin.setValue(self._snap(value))

    def _cast(self, value: float) -> float | int:
        return round(value, self._decimals) if self._decimals else int(round(value))

    def _snap(self, value: float) -> float | int:
        if self._decimals:
            return self._cast(value)
        steps = round((value - self._minimum) / self._step)
        return self._cast(self._minimum + steps * self._step)

    def _slider_moved(self, position: int) -> None:
        self.spin.setValue(self._cast(self._minimum + position * self._step))

    def _spin_changed(self, value: float) -> None:
        snapped = self._snap(value)
        if snapped != self._cast(value):
            self.spin.setValue(snapped)  # re-enters with the snapped value
            return
        self.slider.blockSignals(True)
        self.slider.setValue(round((snapped - self._minimum) / self._step))
        self.slider.blockSignals(False)
        self.value_changed.emit(snapped)
