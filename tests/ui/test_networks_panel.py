"""The LoRA & embedding browser and the prompt's completion: names from a folder, thumbnails,
tags inserted at the cursor of the prompt written in last."""

from __future__ import annotations

import pytest
from PIL import Image
from PySide6.QtCore import Qt

from sdstudio.engine.networks import NetworkFolders, NetworkKind, list_networks


@pytest.fixture
def folders(tmp_path):
    """Two LoRAs (one with a preview picture) and an embedding, as tiny dummy files."""
    folders = NetworkFolders.default(loras=tmp_path / "loras", embeddings=tmp_path / "emb",
                                     vaes=tmp_path / "vae", upscalers=tmp_path / "up")
    for name in ("add_detail", "film_grain"):
        (folders.loras / name).parent.mkdir(parents=True, exist_ok=True)
        (folders.loras / f"{name}.safetensors").write_bytes(b"\0" * 16)
    Image.new("RGB", (300, 200), (200, 40, 40)).save(folders.loras / "film_grain.preview.png")
    folders.embeddings.mkdir()
    (folders.embeddings / "easynegative.safetensors").write_bytes(b"\0" * 16)
    return folders


def folder_lister(folders):
    return lambda kind: (list_networks(kind, folders.folder(kind)), str(folders.folder(kind)))


@pytest.fixture
def panel(qtbot, folders):
    from sdstudio.ui.networks_panel import NetworksPanel

    panel = NetworksPanel(folder_lister(folders))
    qtbot.addWidget(panel)
    panel.show()
    panel.refresh()
    qtbot.waitUntil(lambda: panel.has_thumbnail(NetworkKind.LORA, "film_grain"), timeout=5000)
    return panel


@pytest.fixture
def prompts(qtbot):
    from PySide6.QtWidgets import QPushButton

    from sdstudio.ui.prompt_panel import PromptPanel

    prompts = PromptPanel(QPushButton())  # type: ignore[arg-type]  # the queue button needs a controller
    qtbot.addWidget(prompts)
    prompts.show()
    qtbot.waitExposed(prompts)
    return prompts


def rows(widget):
    return [widget.item(r).text() for r in range(widget.count()) if not widget.item(r).isHidden()]


def test_lists_both_loras_with_the_preview_as_thumbnail(panel):
    assert rows(panel.lists[NetworkKind.LORA]) == ["add_detail", "film_grain"]
    assert rows(panel.lists[NetworkKind.EMBEDDING]) == ["easynegative"]
    assert panel.has_thumbnail(NetworkKind.LORA, "film_grain")
    assert not panel.has_thumbnail(NetworkKind.LORA, "add_detail")
    assert panel.tabs.tabText(0) == "LoRAs (2)"


def test_search_filters_the_names(panel, qtbot):
    qtbot.keyClicks(panel.search, "GRAIN")
    assert rows(panel.lists[NetworkKind.LORA]) == ["film_grain"]


def test_click_inserts_the_tag_with_the_weight_at_the_cursor(panel, prompts, qtbot):
    panel.insert_requested.connect(prompts.insert)
    prompts.prompt.setPlainText("a cat, ")
    prompts.prompt.moveCursor(prompts.prompt.textCursor().MoveOperation.End)
    panel.weight.setValue(0.75)
    lora_list = panel.lists[NetworkKind.LORA]
    rect = lora_list.visualItemRect(lora_list.item(0))
    qtbot.mouseClick(lora_list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert prompts.prompt.toPlainText() == "a cat, <lora:add_detail:0.75>"


def test_enter_inserts_into_the_negative_prompt_when_it_had_the_focus_last(panel, prompts, qtbot):
    panel.insert_requested.connect(prompts.insert)
    prompts.negative_prompt.setFocus()
    qtbot.waitUntil(lambda: prompts.last_edit is prompts.negative_prompt)
    prompts.negative_prompt.setPlainText("blurry")
    prompts.negative_prompt.moveCursor(prompts.negative_prompt.textCursor().MoveOperation.End)
    panel.tabs.setCurrentIndex(1)
    embeddings = panel.lists[NetworkKind.EMBEDDING]
    embeddings.setFocus()
    embeddings.setCurrentRow(0)
    qtbot.keyClick(embeddings, Qt.Key.Key_Return)
    assert prompts.negative_prompt.toPlainText() == "blurry easynegative"
    assert prompts.prompt.toPlainText() == ""


def test_search_field_enter_inserts_the_first_shown_and_down_enters_the_list(panel, prompts, qtbot):
    panel.insert_requested.connect(prompts.insert)
    panel.focus_search()
    qtbot.keyClicks(panel.search, "grain")
    qtbot.keyClick(panel.search, Qt.Key.Key_Return)
    assert prompts.prompt.toPlainText() == "<lora:film_grain:1>"
    panel.search.clear()
    qtbot.keyClick(panel.search, Qt.Key.Key_Down)
    lora_list = panel.lists[NetworkKind.LORA]
    assert panel.focusWidget() is lora_list  # (the panel is a window of its own here)
    assert lora_list.currentItem().text() == "add_detail"


def test_a_refresh_sees_new_files(panel, folders, qtbot):
    (folders.loras / "sub").mkdir()
    (folders.loras / "sub" / "new_style.safetensors").write_bytes(b"\0" * 16)
    panel.refresh_button.click()
    qtbot.waitUntil(lambda: "new_style" in rows(panel.lists[NetworkKind.LORA]), timeout=5000)


def test_names_from_a_server_list_without_thumbnails(qtbot):
    from pathlib import Path

    from sdstudio.engine.networks import NetworkFile
    from sdstudio.ui.networks_panel import NetworksPanel

    def server(kind):
        names = ["detail_tweaker"] if kind is NetworkKind.LORA else []
        return [NetworkFile(kind, n, Path(n)) for n in names], "http://gpu:8188"

    panel = NetworksPanel(server)
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.names_changed, timeout=5000) as names:
        panel.refresh()
    assert names.args == [["detail_tweaker"], []]
    assert panel.lists[NetworkKind.LORA].item(0).icon().isNull()


def test_typing_lora_tag_offers_the_names_and_tab_completes(prompts, qtbot):
    edit = prompts.prompt
    prompts.set_completions(["add_detail", "film_grain"], ["easynegative"])
    edit.setFocus()
    qtbot.keyClicks(edit, "a cat <lora:")
    popup = edit.completer.completer.popup()
    qtbot.waitUntil(popup.isVisible)
    model = edit.completer.completer.completionModel()
    assert [model.index(r, 0).data() for r in range(model.rowCount())] == ["add_detail", "film_grain"]
    qtbot.keyClicks(edit, "gra")
    assert model.rowCount() == 1
    qtbot.keyClick(popup, Qt.Key.Key_Tab)
    assert edit.toPlainText() == "a cat <lora:film_grain:1>"
    assert not popup.isVisible()


def test_three_letters_offer_embeddings_and_esc_dismisses(prompts, qtbot):
    edit = prompts.negative_prompt
    prompts.set_completions([], ["easynegative", "badhands"])
    edit.setFocus()
    qtbot.keyClicks(edit, "ea")
    popup = edit.completer.completer.popup()
    assert not popup.isVisible()  # two letters are not enough
    qtbot.keyClicks(edit, "s")
    qtbot.waitUntil(popup.isVisible)
    qtbot.keyClick(popup, Qt.Key.Key_Escape)
    assert not popup.isVisible()
    assert edit.toPlainText() == "eas"
    qtbot.keyClicks(edit, "y")
    qtbot.waitUntil(popup.isVisible)
    qtbot.keyClick(popup, Qt.Key.Key_Return)
    assert edit.toPlainText() == "easynegative"


def test_ctrl_up_and_ctrl_enter_reach_the_prompt_while_the_popup_is_open(prompts, qtbot):
    edit = prompts.prompt
    prompts.set_completions(["add_detail"], ["doggo"])
    edit.setFocus()
    qtbot.keyClicks(edit, "<lora:")
    popup = edit.completer.completer.popup()
    qtbot.waitUntil(popup.isVisible)
    with qtbot.waitSignal(edit.submitted, timeout=1000):
        qtbot.keyClick(popup, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert not popup.isVisible()
    edit.clear()
    qtbot.keyClicks(edit, "dog")
    qtbot.waitUntil(popup.isVisible)
    qtbot.keyClick(popup, Qt.Key.Key_Up, Qt.KeyboardModifier.ControlModifier)
    assert edit.toPlainText() == "(dog:1.1)"
    assert not popup.isVisible()


def test_a_lister_that_fails_says_why_and_lists_nothing(qtbot):
    from sdstudio.ui.networks_panel import NetworksPanel

    def server(kind):
        raise ConnectionError("http://gpu:8188 did not answer")

    panel = NetworksPanel(server)
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.names_changed, timeout=5000):
        panel.refresh()
    assert panel.where.text() == "The LoRAs could not be listed: http://gpu:8188 did not answer"
    assert panel.lists[NetworkKind.LORA].count() == 0


def test_a_big_folder_is_listed_in_turns_and_late_rows_get_their_pictures(qtbot, tmp_path):
    from sdstudio.ui.networks_panel import NetworksPanel

    for n in range(450):  # more than two turns of rows
        (tmp_path / f"lora_{n:03d}.safetensors").write_bytes(b"\0" * 8)
    for n in (0, 449):
        Image.new("RGB", (8, 8), (n % 256, 0, 0)).save(tmp_path / f"lora_{n:03d}.png")
    panel = NetworksPanel(lambda kind: (list_networks(kind, tmp_path) if kind is NetworkKind.LORA else [], str(tmp_path)))
    qtbot.addWidget(panel)
    panel.search.setText("4")  # the filter applies to rows added in later turns too
    panel.refresh()
    qtbot.waitUntil(lambda: panel.lists[NetworkKind.LORA].count() == 450, timeout=5000)
    qtbot.waitUntil(lambda: panel.has_thumbnail(NetworkKind.LORA, "lora_449"), timeout=5000)
    assert panel.has_thumbnail(NetworkKind.LORA, "lora_000")
    shown = rows(panel.lists[NetworkKind.LORA])
    assert "lora_449" in shown and "lora_400" in shown and "lora_123" not in shown


def test_a_tag_is_kept_a_space_apart_from_the_words_around_it(prompts):
    prompts.set_texts({"prompt": "a cat"})  # the cursor is at the end of text set from outside
    prompts.insert("<lora:a:1>")
    assert prompts.prompt.toPlainText() == "a cat <lora:a:1>"
    prompts.prompt.moveCursor(prompts.prompt.textCursor().MoveOperation.Start)
    prompts.insert("easynegative")
    assert prompts.prompt.toPlainText() == "easynegative a cat <lora:a:1>"
