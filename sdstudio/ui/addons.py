"""Add-on files in the window: the "LoRAs & embeddings" dock, prompt completion of their names,
Model ▸ VAE (per model, remembered in the settings) and Model ▸ Add-on folders….

On this computer the files come from the folders in the settings (with their preview
pictures); on a ComfyUI server from the lists the server gives (`Capabilities.loras`,
`.embeddings`, `.vaes`), which are read once the connection is up.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QKeySequence

from sdstudio.engine.events import UsedNetwork
from sdstudio.engine.networks import (
    NetworkFile,
    NetworkFolders,
    NetworkKind,
    list_networks,
    listed_name,
    missing_listed,
)
from sdstudio.engine.params import missing_networks
from sdstudio.engine.request import ModelRef
from sdstudio.ui.errors import Level
from sdstudio.ui.networks_panel import NetworksPanel
from sdstudio.ui.vae_menu import VaeMenu

if TYPE_CHECKING:
    from sdstudio.engine.request import ModelInfo
    from sdstudio.ui.main_window import MainWindow

MISSING_ADDONS = "missing add-on files"  # the banner's cause: reusing another image clears it


class Addons(QObject):
    """Installs itself into `window`; keep it to follow `folders_changed`."""

    # The person set other add-on folders: (NetworkFolders). The composition root hands them
    # to the local engine, which uses them from its next job on.
    folders_changed = Signal(object)

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.panel = NetworksPanel(self._list)
        self.dock = window.add_dock(self.panel, "LoRAs && embeddings")  # && shows one &
        self.vae_menu = VaeMenu(self._list_vaes, window)
        window.model_menu.addMenu(self.vae_menu)
        folders = window.model_menu.addAction("A&dd-on folders…", self.choose_folders)
        folders.setToolTip("Where LoRAs, embeddings, VAEs and upscaler models are looked up")
        find = window.view_menu.addAction("Find a &LoRA or embedding", self.find)
        find.setShortcut(QKeySequence("Ctrl+Shift+L"))
        self.panel.insert_requested.connect(window.prompt_panel.insert)
        self.panel.names_changed.connect(window.prompt_panel.set_completions)
        self.panel.names_changed.connect(self._names_listed)
        self._embeddings: list[str] = []
        self._vectors: dict[str, int] = {}  # per embedding name, read once per listing
        for count in (window.prompt_panel.prompt_tokens, window.prompt_panel.negative_tokens):
            count.embedding_vectors = self.embedding_vectors
        self.vae_menu.chosen.connect(self._vae_chosen)
        window.controller.model_loaded.connect(self._model_loaded)
        window.controller.model_failed.connect(self._model_failed)
        window.parameters_reused.connect(self._parameters_reused)
        self._listed_for = ""
        self.refresh()

    def refresh(self) -> None:
        """List the files again, from wherever the studio generates now."""
        self._listed_for = self.window.settings.server
        self.panel.empty_hint = "" if self._listed_for else "Model ▸ Add-on folders… sets where they are."
        self.panel.refresh()

    def find(self) -> None:
        """Show the dock and put the keyboard in its search field."""
        self.dock.show()
        self.dock.raise_()
        self.panel.focus_search()

    def embedding_vectors(self, text: str) -> dict[str, int]:
        """The vectors of each embedding on this computer `text` names, for the token counts
        (a header read per name, once per listing; a server's sizes are not known here)."""
        from sdstudio.engine.embeddings import vector_counts

        lowered = text.lower()
        named = [n for n in self._embeddings if n.lower() in lowered]
        if self.window.settings.server or not named:
            return {}
        if any(n not in self._vectors for n in named):
            self._vectors |= {n: 0 for n in named} | vector_counts(self.folders().embeddings, (text,))
        return {n: self._vectors[n] for n in named if self._vectors[n]}

    def _names_listed(self, _loras: list[str], embeddings: list[str]) -> None:
        self._embeddings, self._vectors = list(embeddings), {}

    def folders(self) -> NetworkFolders:
        return NetworkFolders.default(**self.window.settings.folders)

    def choose_folders(self) -> None:
        from sdstudio.ui.folders_dialog import FoldersDialog

        dialog = FoldersDialog(self.window.settings.folders, self.window)
        if dialog.exec() == FoldersDialog.DialogCode.Accepted:
            self.set_folders(dialog.values())

    def set_folders(self, chosen: dict[str, str]) -> None:
        """Use these folders (NetworkFolders field -> path; absent = default) from now on."""
        self.window.settings.folders = dict(chosen)
        self.folders_changed.emit(self.folders())
        self.refresh()

    # ---- listing (on the panel's worker thread, or when the VAE menu opens) -------------

    def _list(self, kind: NetworkKind) -> tuple[list[NetworkFile], str]:
        server = self.window.settings.server
        if not server:
            folder = self.folders().folder(kind)
            return list_networks(kind, folder), str(folder)
        controller = self.window.controller
        if kind not in (NetworkKind.LORA, NetworkKind.EMBEDDING) or not controller.backend_started:
            return [], f"{server} (not listed)" if controller.backend_started else f"{server} (not connected yet)"
        capabilities = controller.jobs.backend.capabilities()
        names = capabilities.loras if kind is NetworkKind.LORA else capabilities.embeddings
        return [NetworkFile(kind, listed_name(name), Path(name)) for name in names], server

    def _list_vaes(self) -> tuple[list[str], str]:
        server, controller = self.window.settings.server, self.window.controller
        if server:
            known = controller.known_capabilities()  # the menu never waits for the server
            if known is None:
                return [], f"{server} (not connected yet)"
            return [listed_name(n) for n in known.vaes], server
        folder = self.folders().vaes
        return [f.name for f in list_networks(NetworkKind.VAE, folder)], str(folder)

    # ---- reactions ----------------------------------------------------------------------

    def _vae_chosen(self, name: str) -> None:
        """Remember the VAE for the current model and load the model with it."""
        ref = self.window.controller.model_ref
        if ref is None:
            self.window.report("Open a model first; the VAE is chosen per model.", level=Level.INFO)
            self.vae_menu.set_current("")
            return
        if name:
            self.window.settings.vaes[ref.source] = name
        else:
            self.window.settings.vaes.pop(ref.source, None)
        self.window.load_model(ref)

    def _parameters_reused(self, fields: dict) -> None:
        """Say which add-on files a reused image names are not here (on a server: not on it),
        and decode with the VAE the image was made with when its model is the one loaded."""
        server = self.window.settings.server
        missing = self._missing_on_server(fields.get("networks", []), server) if server else (
            missing_networks(fields.get("networks", []), self.folders()))
        if missing:
            where = f"on the server at {server}" if server else "here"
            self.window.report(f"This image used add-on files that are not {where}: " + " ".join(m for _, m in missing),
                               level=Level.WARNING, cause=MISSING_ADDONS)
        else:
            self.window.banner.clear(MISSING_ADDONS)
        made_with, loaded = fields.get("model"), self.window.controller.model_ref
        if (isinstance(made_with, ModelRef) and loaded is not None and made_with.source == loaded.source
                and made_with.vae != loaded.vae and not any(n.kind == NetworkKind.VAE for n, _ in missing)):
            self.window.report(f"Model ▸ VAE: {made_with.vae or 'from the model'}, as this image was made.",
                               level=Level.INFO)
            self._vae_chosen(made_with.vae)

    def _missing_on_server(self, used: list[UsedNetwork], server: str) -> list[tuple[UsedNetwork, str]]:
        capabilities = self.window.controller.known_capabilities()
        if capabilities is None:
            return []  # not connected yet: the job says it, if a file is missing
        listed = {NetworkKind.LORA: capabilities.loras, NetworkKind.EMBEDDING: capabilities.embeddings,
                  NetworkKind.VAE: capabilities.vaes}
        return missing_listed(used, listed, f"the server at {server}")

    def _model_loaded(self, ref: ModelRef, _info: ModelInfo) -> None:
        self.vae_menu.set_current(ref.vae)
        if self.window.settings.server != self._listed_for:  # another machine: its own files
            self.refresh()

    def _model_failed(self, ref: ModelRef) -> None:
        """A VAE that broke the load is forgotten, so the model opens with its own next time
        (the banner already says what went wrong)."""
        if ref.vae and self.window.settings.vaes.get(ref.source) == ref.vae:
            del self.window.settings.vaes[ref.source]
        current = self.window.controller.model_ref
        self.vae_menu.set_current(current.vae if current is not None else "")
