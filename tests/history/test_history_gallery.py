"""The gallery widget over a real store: grid, search, details, reuse, delete and undo."""

from __future__ import annotations

import pytest
from PIL import Image
from PySide6.QtCore import Qt

from sdstudio.engine.request import GenerationRequest
from sdstudio.history import HistoryStore, Query
from sdstudio.ui.gallery import GalleryWidget
from tests.jobs import result

PROMPTS = ["a red fox in the snow", "a lighthouse at night", "portrait of a fox", "a bowl of fruit"]


@pytest.fixture
def store(tmp_path):
    s = HistoryStore.open(tmp_path)
    for n, prompt in enumerate(PROMPTS):
        request = GenerationRequest.create(prompt=prompt, negative_prompt="blurry", steps=4 + n, width=64, height=48)
        s.save(result(Image.new("RGB", (40, 32), (60 * n, 90, 200)), request, 100 + n))
    yield s
    s.close()


@pytest.fixture
def gallery(qtbot, store):
    widget = GalleryWidget(store)
    qtbot.addWidget(widget)
    widget.resize(700, 600)
    widget.show()
    yield widget
    widget.close_loader()


def _prompts(gallery) -> list[str]:
    model = gallery.model
    return [model.image_at(row).prompt for row in range(model.rowCount())]


def test_grid_lists_every_image_newest_first_and_loads_thumbnails(qtbot, gallery):
    assert _prompts(gallery) == PROMPTS[::-1]
    assert "4 images" in gallery.count.text()
    model = gallery.model
    first = model.image_at(0)
    model.data(model.index(0), Qt.ItemDataRole.DecorationRole)
    qtbot.waitUntil(lambda: gallery.thumbnails._cache.get(first.id) is not None, timeout=5000)
    thumb = model.data(model.index(0), Qt.ItemDataRole.DecorationRole)
    assert not thumb.isNull() and max(thumb.width(), thumb.height()) <= 128


def test_search_filters_after_typing(qtbot, gallery):
    qtbot.keyClicks(gallery.search, "fox")
    qtbot.waitUntil(lambda: gallery.model.rowCount() == 2, timeout=3000)
    assert _prompts(gallery) == ["portrait of a fox", "a red fox in the snow"]
    gallery.search.clear()
    qtbot.waitUntil(lambda: gallery.model.rowCount() == 4, timeout=3000)


def test_favourites_and_grouping_filter(gallery, store):
    gallery.select_row(1)
    gallery.details.buttons["favourite"].click()
    assert store.get(gallery.details.image.id).favourite
    gallery.favourites.setChecked(True)
    assert _prompts(gallery) == [PROMPTS[2]]
    gallery.favourites.setChecked(False)
    gallery.grouping.setCurrentIndex(2)  # by prompt
    assert gallery.groups.isVisible() and gallery.groups.count() == 5
    gallery.groups.setCurrentIndex(gallery.groups.findData(PROMPTS[0]))
    assert _prompts(gallery) == [PROMPTS[0]]
    gallery.grouping.setCurrentIndex(1)  # by day
    assert gallery.groups.count() == 2 and gallery.model.rowCount() == 4


def test_selecting_shows_details_and_reuse_fills_the_panel(qtbot, gallery):
    gallery.select_row(0)
    image = gallery.details.image
    assert image.prompt == PROMPTS[-1]
    assert "seed 103" in gallery.details.summary.text()
    assert gallery.details.parameters.toPlainText().startswith(PROMPTS[-1])
    qtbot.waitUntil(lambda: gallery.details.picture.pixmap() is not None and not gallery.details.picture.pixmap().isNull())
    applied = {}
    gallery.reuse_fields.connect(applied.update)
    seeds = []
    gallery.reuse_seed.connect(seeds.append)
    gallery.details.buttons["reuse"].click()
    gallery.details.buttons["reuse_seed"].click()
    assert (applied["prompt"], applied["steps"], applied["seed"], applied["width"]) == (PROMPTS[-1], 7, 103, 64)
    assert seeds == [103]
    sent = []
    gallery.send_to_img2img.connect(lambda path, image_id: sent.append((path, image_id)))
    gallery.details.buttons["img2img"].click()
    assert sent == [(str(gallery.store.path(image)), image.id)]


def test_delete_then_undo_restores_from_the_trash(qtbot, gallery, store):
    gallery.select_row(0)
    doomed = gallery.details.image
    gallery.grid.setFocus()  # Delete acts on the history only while the focus is in it
    qtbot.keyClick(gallery.grid, Qt.Key.Key_Delete)
    assert gallery.model.rowCount() == 3 and store.get(doomed.id).trashed
    assert gallery.undo_bar.isVisible()
    assert not store.path(store.get(doomed.id)).parent.samefile(store.root / "images" / doomed.file.split("/")[1])
    gallery.undo_button.click()
    assert not store.get(doomed.id).trashed
    assert _prompts(gallery) == PROMPTS[::-1]
    assert not gallery.undo_bar.isVisible()


def test_trash_view_restore_and_empty(gallery, store):
    gallery.select_row(0)
    gallery.details.buttons["delete"].click()
    gallery.select_row(0)
    gallery.details.buttons["delete"].click()
    gallery.trash_view.setChecked(True)
    assert gallery.model.rowCount() == 2 and gallery.empty_trash.isVisible()
    gallery.select_row(0)
    assert gallery.details.buttons["restore"].isVisibleTo(gallery)
    gallery.details.buttons["restore"].click()
    assert gallery.model.rowCount() == 1 and store.count() == 3
    gallery.confirm = lambda _text: True
    gallery.empty_trash.click()
    assert gallery.model.rowCount() == 0 and store.count(Query(trashed=True)) == 0


def test_new_images_appear_at_the_top(gallery, store):
    request = GenerationRequest.create(prompt="a brand new image", width=32, height=32)
    image = store.save(result(Image.new("RGB", (32, 32)), request, 5))
    gallery.add_images([image])
    assert gallery.model.image_at(0).id == image.id
    assert gallery.model.rowCount() == 5 and "5 images" in gallery.count.text()
