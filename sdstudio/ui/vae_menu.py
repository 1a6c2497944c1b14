"""Model ▸ VAE: the model's own VAE or a VAE file from the VAE folder, for the current model."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Signal
from PySide6.QtGui import QActionGroup
from PySide6.QtWidgets import QMenu, QWidget

# -> (VAE file names, where they were looked for). Called when the menu opens.
VaeLister = Callable[[], "tuple[list[str], str]"]

FROM_MODEL = ""


class VaeMenu(QMenu):
    # The person chose a VAE for the current model: (file name, "" = the model's own).
    chosen = Signal(str)

    def __init__(self, lister: VaeLister, parent: QWidget | None = None) -> None:
        super().__init__("&VAE", parent)
        self.setToolTipsVisible(True)
        self.setToolTip("The decoder that turns latents into pixels; another VAE can fix washed-out colours")
        self._lister = lister
        self._current = FROM_MODEL
        self.aboutToShow.connect(self.rebuild)
        self.rebuild()

    def current(self) -> str:
        return self._current

    def set_current(self, name: str) -> None:
        """Show `name` as chosen (e.g. the model just loaded remembers one); emits nothing."""
        self._current = name
        for action in self.actions():
            if action.isCheckable():
                action.setChecked(action.data() == name)

    def rebuild(self) -> None:
        """List the VAE folder again (files come and go while the studio runs)."""
        self.clear()
        group = QActionGroup(self)
        names, where = self._lister()
        own = self.addAction("&From the model")
        own.setData(FROM_MODEL)
        own.setToolTip("The VAE the model file or folder comes with")
        self.addSeparator()
        # The chosen file stays listed even when it has gone, so the menu says what is in use.
        for name in names if self._current in (FROM_MODEL, *names) else [*names, self._current]:
            action = self.addAction(name)
            action.setData(name)
            action.setToolTip(f"{name} from {where}")
        if not names:
            empty = self.addAction(f"No VAE files in {where}")
            empty.setEnabled(False)
        for action in self.actions():
            name = action.data()
            if name is not None and action.isEnabled():
                action.setCheckable(True)
                group.addAction(action)
                action.triggered.connect(lambda _=False, n=name: self._choose(n))
        self.set_current(self._current)

    def _choose(self, name: str) -> None:
        self._current = name
        self.chosen.emit(name)
