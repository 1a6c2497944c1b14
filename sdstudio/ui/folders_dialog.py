"""Model ▸ Add-on folders…: where LoRAs, embeddings, VAEs and upscaler models are looked up.

One row per kind: a path field (empty = the default folder, shown as its placeholder) and a
Browse… button. The dialog only edits the choice; the window applies it.
"""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QWidget,
)

from sdstudio.engine.networks import NetworkFolders, NetworkKind

# NetworkFolders field, label, what the folder is for.
_ROWS = (
    ("loras", "&LoRAs:", "LoRA files a prompt names with <lora:name:weight>"),
    ("embeddings", "&Embeddings:", "Textual-inversion embeddings a prompt names by their file name"),
    ("vaes", "&VAEs:", "VAE files Model ▸ VAE offers instead of a model's own"),
    ("upscalers", "&Upscalers:", "Upscaler models (ESRGAN and the like) for the hires fix and Upscale"),
)
_KINDS = dict(zip((field for field, _, _ in _ROWS), NetworkKind, strict=True))


class FoldersDialog(QDialog):
    def __init__(self, chosen: dict[str, str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Add-on folders")
        defaults = NetworkFolders.default()
        self.fields: dict[str, QLineEdit] = {}
        form = QFormLayout(self)
        form.addRow(QLabel("Leave a field empty to use the default folder shown in it."))
        for field, label, tip in _ROWS:
            edit = QLineEdit(chosen.get(field, ""))
            edit.setPlaceholderText(str(defaults.folder(_KINDS[field])))
            edit.setToolTip(f"{tip}. Sub-folders are searched too.")
            edit.setClearButtonEnabled(True)
            edit.setMinimumWidth(edit.fontMetrics().horizontalAdvance("x" * 48))
            browse = QPushButton("Browse…")
            browse.setToolTip(f"Choose the {label.strip('&:')} folder")
            browse.clicked.connect(lambda _=False, e=edit, t=label: self._browse(e, t))
            row = QHBoxLayout()
            row.addWidget(edit, 1)
            row.addWidget(browse)
            form.addRow(label, row)
            self.fields[field] = edit
            form.labelForField(row).setBuddy(edit)  # type: ignore[union-attr]
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def values(self) -> dict[str, str]:
        """The chosen folders by NetworkFolders field; defaults are left out."""
        return {field: text for field, edit in self.fields.items() if (text := edit.text().strip())}

    def _browse(self, edit: QLineEdit, label: str) -> None:
        start = edit.text() or edit.placeholderText()
        folder = QFileDialog.getExistingDirectory(self, f"Folder of {label.strip('&:')}", start)
        if folder:
            edit.setText(folder)
