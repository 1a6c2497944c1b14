"""Add-on files in the window: Model ▸ Add-on folders… and Model ▸ VAE, on a fake backend that
only records what it was asked to load (no model is ever loaded)."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from sdstudio.engine.backend import Capabilities
from sdstudio.engine.events import ErrorKind, Failed, ModelLoaded, UsedNetwork
from sdstudio.engine.networks import NetworkFolders, NetworkKind
from sdstudio.engine.request import Family, ModelInfo, ModelRef

ROOT = Path(__file__).resolve().parents[2]


class RecordingBackend:
    """Answers every load at once with a made-up model; remembers the ModelRefs, and the
    threads capabilities() was asked on."""

    def __init__(self) -> None:
        self.loads = []
        self.asked_on: list[threading.Thread] = []

    def load_model(self, ref, callback):
        self.loads.append(ref)
        if ref.vae == "broken":
            callback(Failed(ErrorKind.MODEL_LOAD, "The VAE file broken is no VAE."))
        else:
            callback(ModelLoaded(ModelInfo(ref.name, Family.SD1, False, "cpu", "float32", ref.source)))
        return threading.Event()

    def capabilities(self):
        self.asked_on.append(threading.current_thread())
        return Capabilities("fake", ("Euler a",), frozenset({Family.SD1}), frozenset(),
                            loras=("styles/detail_tweaker.safetensors",), embeddings=("bad_hands",),
                            vaes=("sd15/vae-ft-mse.safetensors",), upscalers=("4x-UltraSharp.pth",))

    def cancel_all_pending(self):
        pass

    def pending_jobs(self):
        return []

    def server_states(self):
        return []

    def shutdown(self, wait=False):
        pass


@pytest.fixture
def window(qtbot, qloop, tmp_path):
    from sdstudio.settings import SettingsStore
    from sdstudio.ui.addons import Addons
    from sdstudio.ui.main_window import MainWindow

    backend = RecordingBackend()
    window = MainWindow(SettingsStore(tmp_path / "settings.json"), backend_factory=lambda: backend)
    window.backend = backend
    window.settings.folders = {"vaes": str(tmp_path / "vae"), "loras": str(tmp_path / "loras")}
    window.addons = Addons(window)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    yield window
    window.controller.close()


def loaded_beside_a_vae(window, qtbot, tmp_path, vae: str) -> str:
    """A model loaded, and the VAE file `vae` in the VAE folder; the model's source."""
    (tmp_path / "vae").mkdir()
    (tmp_path / "vae" / f"{vae}.safetensors").write_bytes(b"\0" * 16)
    model = str(tmp_path / "a.safetensors")
    window.load_model(ModelRef(model))
    qtbot.waitUntil(lambda: window.controller.model_info is not None)
    return model


def vae_action(window, label):
    window.addons.vae_menu.rebuild()
    return next(a for a in window.addons.vae_menu.actions() if a.text().replace("&", "") == label)


def test_vae_menu_sets_the_vae_of_the_next_request_and_is_kept_per_model(window, qtbot, tmp_path):
    (tmp_path / "vae").mkdir()
    (tmp_path / "vae" / "kl-f8-anime.safetensors").write_bytes(b"\0" * 16)
    first, second = str(tmp_path / "a.safetensors"), str(tmp_path / "b.safetensors")
    window.load_model(ModelRef(first))
    qtbot.waitUntil(lambda: window.controller.model_info is not None)

    vae_action(window, "kl-f8-anime").trigger()
    assert window.backend.loads[-1].vae == "kl-f8-anime"  # the model reloads with it
    qtbot.waitUntil(lambda: window.status.model.text() == "Model: a + VAE kl-f8-anime")  # the status bar says which
    assert window.build_request().model.vae == "kl-f8-anime"
    assert window.settings.vaes == {first: "kl-f8-anime"}

    window.load_model(ModelRef(second))  # another model starts with its own VAE
    assert window.build_request().model.vae == ""
    window.load_model(ModelRef(first))
    assert window.build_request().model.vae == "kl-f8-anime"
    qtbot.waitUntil(lambda: vae_action(window, "kl-f8-anime").isChecked())

    vae_action(window, "From the model").trigger()
    assert window.build_request().model.vae == ""
    assert window.settings.vaes == {}


def test_reusing_an_image_decodes_with_its_vae_when_it_was_made_with_the_loaded_model(window, qtbot, tmp_path):
    model = loaded_beside_a_vae(window, qtbot, tmp_path, "kl-f8-anime")

    gone = {"model": ModelRef(model, vae="clearvae"), "networks": [UsedNetwork("vae", "clearvae", "")]}
    window.parameters_reused.emit(gone)
    assert window.build_request().model.vae == ""  # a missing VAE is named, not loaded
    assert "No VAE called 'clearvae'" in window.banner.problems()[-1].message

    made = {"model": ModelRef(model, vae="kl-f8-anime"), "networks": [UsedNetwork("vae", "kl-f8-anime", "")]}
    window.parameters_reused.emit(made)
    assert window.backend.loads[-1].vae == "kl-f8-anime" and window.settings.vaes == {model: "kl-f8-anime"}
    assert not any("No VAE" in p.message for p in window.banner.problems())
    other_model = {"model": ModelRef(str(tmp_path / "b.safetensors")), "networks": []}
    window.parameters_reused.emit(other_model)  # another model's VAE choice is not this one's
    assert window.build_request().model.vae == "kl-f8-anime"
    window.parameters_reused.emit({"model": ModelRef(model), "networks": []})
    assert window.build_request().model.vae == ""


def test_on_a_server_reusing_an_image_names_the_files_the_server_lacks(window, qtbot):
    window.settings.server = "http://gpu:8188"
    window.controller.jobs  # noqa: B018  # the backend starts (the window does on its first job)
    qtbot.waitUntil(lambda: window.controller.known_capabilities() is not None, timeout=5000)
    used = [UsedNetwork("lora", "detail_tweaker", ""), UsedNetwork("lora", "detail_tweakr", ""),
            UsedNetwork("embedding", "bad_hands", ""), UsedNetwork("vae", "vae-ft-mse", "")]
    window.parameters_reused.emit({"networks": used})
    [problem] = [p for p in window.banner.problems() if "add-on" in p.message]
    assert "not on the server at http://gpu:8188" in problem.message
    assert "No LoRA called 'detail_tweakr'" in problem.message and "did you mean detail_tweaker" in problem.message
    assert problem.message.count("No ") == 1


def test_folders_dialog_sets_the_folders_and_the_panel_lists_the_new_one(window, qtbot, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "pixel_art.safetensors").write_bytes(b"\0" * 16)
    changed = []
    window.addons.folders_changed.connect(changed.append)

    def fill_and_accept():
        dialog = QApplication.activeModalWidget()
        assert dialog.fields["embeddings"].placeholderText() == str(NetworkFolders.default().embeddings)
        dialog.fields["loras"].setText(str(elsewhere))
        dialog.fields["vaes"].clear()  # back to the default
        dialog.accept()

    QTimer.singleShot(0, fill_and_accept)
    window.addons.choose_folders()

    assert window.settings.folders == {"loras": str(elsewhere)}
    assert changed and changed[-1].loras == elsewhere
    assert changed[-1].vaes == NetworkFolders.default().vaes
    lora_list = window.addons.panel.lists[NetworkKind.LORA]
    qtbot.waitUntil(lambda: lora_list.count() == 1 and lora_list.item(0).text() == "pixel_art", timeout=5000)
    assert window.prompt_panel.prompt.completer._loras == ["pixel_art"]


def test_a_vae_that_fails_to_load_is_forgotten(window, qtbot, tmp_path):
    loaded_beside_a_vae(window, qtbot, tmp_path, "broken")
    with qtbot.waitSignal(window.controller.model_failed):
        vae_action(window, "broken").trigger()
    assert window.settings.vaes == {}
    assert window.build_request().model.vae == ""
    assert vae_action(window, "From the model").isChecked()


def test_on_a_server_the_dock_lists_the_servers_loras_and_embeddings(window, qtbot):
    window.settings.server = "http://gpu:8188"
    window.controller.jobs  # noqa: B018  # the backend starts (the window does on its first job)
    window.addons.refresh()
    lora_list = window.addons.panel.lists[NetworkKind.LORA]
    qtbot.waitUntil(lambda: lora_list.count() == 1, timeout=5000)
    assert lora_list.item(0).text() == "detail_tweaker"  # as a tag names it: no folder, no extension
    embedding_list = window.addons.panel.lists[NetworkKind.EMBEDDING]
    qtbot.waitUntil(lambda: embedding_list.count() == 1, timeout=5000)
    assert embedding_list.item(0).text() == "bad_hands"
    assert "http://gpu:8188" in window.addons.panel.where.text()


def test_on_a_server_the_vae_menu_lists_the_servers_vaes_and_the_next_load_uses_one(window, qtbot):
    window.settings.server = "http://gpu:8188"
    window.controller.jobs  # noqa: B018  # the backend starts (the window does on its first job)
    qtbot.waitUntil(lambda: window.controller.known_capabilities() is not None, timeout=5000)
    window.load_model(ModelRef("sd15.safetensors"))
    qtbot.waitUntil(lambda: len(window.backend.loads) == 1, timeout=5000)
    vae_action(window, "vae-ft-mse").trigger()
    qtbot.waitUntil(lambda: len(window.backend.loads) == 2, timeout=5000)
    assert window.backend.loads[-1].vae == "vae-ft-mse"


APPLY_FOLDERS = """
import sys
from sdstudio.app import open_studio
from sdstudio.ui.addons import Addons
studio = open_studio(["--settings", sys.argv[1], "--model", sys.argv[2]])
window = studio.window
engine = window.controller.jobs.backend.current  # the local engine, made now
print("before", engine.folders.loras, flush=True)
window.findChild(Addons).set_folders({"loras": sys.argv[3]})
print("after", engine.folders.loras, flush=True)
studio.shutdown()
"""


def test_new_folders_reach_the_running_local_engine(tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", APPLY_FOLDERS, str(tmp_path / "s.json"), str(tmp_path / "no-model"), str(tmp_path / "L")],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )
    assert f"after {tmp_path / 'L'}" in out.stdout, out.stdout + out.stderr
    assert "before" in out.stdout and f"before {tmp_path / 'L'}" not in out.stdout


def test_ctrl_shift_l_puts_the_keyboard_in_the_browsers_search(window, qtbot):
    from PySide6.QtCore import Qt

    window.activateWindow()
    window.addons.dock.hide()
    window.prompt_panel.prompt.setFocus()
    qtbot.keyClick(window.prompt_panel.prompt, Qt.Key.Key_L,
                   Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert window.addons.dock.isVisible()
    qtbot.waitUntil(window.addons.panel.search.hasFocus, timeout=2000)


def test_an_embedding_counts_as_its_vectors_under_the_prompt(window, qtbot, tmp_path):
    import torch
    from safetensors.torch import save_file

    window.settings.folders = window.settings.folders | {"embeddings": str(tmp_path / "embeddings")}
    (tmp_path / "embeddings").mkdir()
    save_file({"emb_params": torch.zeros(6, 768)}, str(tmp_path / "embeddings" / "bad_hands.safetensors"))
    window.addons.refresh()
    qtbot.waitUntil(lambda: window.addons.panel.lists[NetworkKind.EMBEDDING].count() == 1, timeout=5000)
    count = window.prompt_panel.prompt_tokens
    window.prompt_panel.prompt.setPlainText("a cat")
    count.refresh()
    plain = int(count.text().split("/")[0])
    window.prompt_panel.prompt.setPlainText("a cat bad_hands")
    count.refresh()
    assert count.text() == f"{plain + 6}/75"  # six vectors, not the name's word pieces


def test_the_window_lists_upscaler_models_without_asking_the_backend_on_its_own_thread(window, qtbot):
    # A backend's capabilities may list folders of thousands of files or wait for a server.
    window.controller.jobs  # noqa: B018  # the backend starts (the window does on its first job)
    window.apply_fields({"hires_scale": 1.5})
    combo = window.params.controls["hires_upscaler"]
    combo.setFocus()
    qtbot.waitUntil(lambda: combo.findText("4x-UltraSharp") >= 0, timeout=5000)
    assert window.results.upscalers() == ("4x-UltraSharp.pth",)
    assert window.backend.asked_on and threading.main_thread() not in window.backend.asked_on
