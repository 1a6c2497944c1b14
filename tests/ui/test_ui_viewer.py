"""The large viewer: zoom, fit / 100%, pan, full screen; each result with its seed; the
picture's menu (save, copy, parameters, seed, send on); drag out as a PNG with parameters;
history images in the same viewer; the canvas page hands over to it while generating."""

from __future__ import annotations

from types import SimpleNamespace

from PIL import Image
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QGuiApplication, QImage, QWheelEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from sdstudio.engine.events import UsedNetwork
from sdstudio.engine.params import networks_from_json
from sdstudio.engine.pngmeta import read_png_text
from sdstudio.engine.request import GenerationRequest, Inputs, Mode
from sdstudio.ui.queue_view import init_icon
from tests.canvas.canvas_helpers import drag
from tests.ui.conftest import finish_job

RGB = ((200, 10, 10), (10, 200, 10), (10, 10, 200))


def wheel(widget, pos: QPointF, notches: int) -> None:
    event = QWheelEvent(
        pos, widget.mapToGlobal(pos), QPoint(), QPoint(0, 120 * notches),
        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False,
    )
    QApplication.sendEvent(widget, event)


def test_wheel_zooms_around_the_pointer_fit_and_100_percent_and_pan(studio):
    view = studio.results.view
    finish_job(studio, size=(64, 64))
    assert view.fitted and view.image_rect().width() > 300  # a 64 px result fills the centre
    anchor = QPointF(view.width() / 3, view.height() / 2)
    before = (anchor - view.image_rect().topLeft()) / view.scale
    wheel(view, anchor, 2)
    after = (anchor - view.image_rect().topLeft()) / view.scale
    assert not view.fitted and abs(before.x() - after.x()) < 1e-6 and abs(before.y() - after.y()) < 1e-6
    corner = view.image_rect().topLeft()
    drag(view, [QPointF(100, 100), QPointF(140, 120)])  # zoomed in: a drag pans
    assert view.image_rect().topLeft() - corner == QPointF(40, 20)
    studio.results.actions_by_name["actual_size"].trigger()
    assert view.scale == 1.0 and view.image_rect().width() == 64
    studio.results.actions_by_name["fit"].trigger()
    assert view.fitted


def test_double_click_shows_the_picture_full_screen_and_esc_leaves(qtbot, studio):
    finish_job(studio, colours=RGB, seeds=(1, 2, 3))
    view = studio.results.view
    QTest.mouseDClick(view, Qt.MouseButton.LeftButton, pos=view.rect().center())
    full = studio.results._full
    assert full is not None and full.isFullScreen()
    assert full.viewer.image() == view.image() and full.viewer.caption() == "Seed 1 · 1/3"
    QTest.keyClick(full, Qt.Key.Key_Right)  # steps through the batch there too
    assert full.viewer.caption() == "Seed 2 · 2/3"
    QTest.keyClick(full, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: studio.results._full is None)


def test_each_result_shows_its_seed_and_left_right_step_through_the_batch(studio):
    finish_job(studio, colours=RGB, seeds=(7, 8, 9))
    results = studio.results
    assert results.view.caption() == "Seed 7 · 1/3"
    results.view.setFocus()
    QTest.keyClick(results.view, Qt.Key.Key_Right)
    QTest.keyClick(results.view, Qt.Key.Key_Right)
    assert results.view.caption() == "Seed 9 · 3/3" and results.strip.currentRow() == 2
    assert results.view.image().pixelColor(1, 1).blue() == 200
    QTest.keyClick(results.view, Qt.Key.Key_Left)
    assert results.view.caption() == "Seed 8 · 2/3"


def test_the_pictures_menu(qtbot, studio, tmp_path):
    film_grain = UsedNetwork("lora", "film_grain", "0123456789ab", 0.8)
    finish_job(studio, seeds=(1234,), prompt="a red square <lora:film_grain:0.8>", networks=(film_grain,))
    results = studio.results
    texts = [a.text() for a in results.context_menu().actions() if not a.isSeparator()]
    assert texts[:6] == ["Save as…", "Copy image", "Copy parameters", "Use seed", "Send to img2img", "Send to canvas / inpaint"]

    saved = results.save_as(str(tmp_path / "mine"))
    parameters, data = read_png_text(saved)
    assert saved.suffix == ".png" and "Seed: 1234" in parameters and data is not None
    assert networks_from_json(data) == [film_grain]  # the JSON chunk names the LoRA, as the history's does

    results.actions_by_name["copy_parameters"].trigger()
    assert QGuiApplication.clipboard().text() == parameters
    results.actions_by_name["copy"].trigger()
    assert QGuiApplication.clipboard().image().pixelColor(2, 2).red() == 200

    results.actions_by_name["use_seed"].trigger()
    assert studio.request_fields()["seed"] == 1234

    results.actions_by_name["img2img"].trigger()
    assert studio.center.currentWidget() is studio.canvas and studio.request_fields()["mode"] is Mode.IMG2IMG
    assert studio.canvas.image().getpixel((3, 3)) == (200, 10, 10)


def test_a_result_drags_out_as_a_png_file_with_its_parameters(studio):
    finish_job(studio, seeds=(55,))
    mime = studio.results.drag_mime()
    path = mime.urls()[0].toLocalFile()
    assert path.endswith(".png") and mime.hasImage()
    parameters, _ = read_png_text(path)
    assert "Seed: 55" in parameters


def test_history_images_show_in_the_same_viewer(qtbot, studio):
    finish_job(studio, colours=RGB[:2], seeds=(1, 2), size=(80, 48))
    gallery = studio.history.gallery
    qtbot.waitUntil(lambda: gallery.model.rowCount() == 2, timeout=5000)
    studio.results.show_preview(QImage())  # something else is shown meanwhile
    gallery.select_row(1)
    qtbot.waitUntil(lambda: studio.results.view.image().size().width() == 80, timeout=5000)
    shown = studio.results.current()
    assert shown.path is not None and shown.seed == gallery.details.image.seed
    assert studio.results.view.caption() == f"Seed {shown.seed}"


def test_a_large_history_image_opens_at_its_own_size(qtbot, studio):
    finish_job(studio, colours=RGB[:1], seeds=(3,), size=(1200, 1040))
    gallery = studio.history.gallery
    qtbot.waitUntil(lambda: gallery.model.rowCount() == 1, timeout=5000)
    studio.results.show_preview(QImage())
    gallery.select_row(0)
    qtbot.waitUntil(lambda: studio.results.view.image().width() == 1200, timeout=10000)
    assert studio.results.view.image().height() == 1040  # 100 % is the file's pixels
    assert max(gallery.details._picture.width(), gallery.details._picture.height()) <= 1024


def test_generating_from_the_canvas_page_shows_the_preview(studio):
    studio.center.setCurrentWidget(studio.canvas)
    studio.controller.job_started.emit(GenerationRequest.create(prompt="x"), 10)
    assert studio.center.currentWidget() is studio.results


def test_a_mask_painted_in_img2img_offers_inpaint(studio):
    studio.canvas.set_image(Image.new("RGB", (64, 64)))
    assert studio.request_fields()["mode"] is Mode.IMG2IMG
    studio.canvas.document.fill_mask()
    assert studio.banner.action_button.isVisibleTo(studio)
    assert studio.banner.action_button.text() == "Use inpaint"
    studio.banner.action_button.click()
    assert studio.request_fields()["mode"] is Mode.INPAINT
    assert not any(p.cause == "mask-in-img2img" for p in studio.banner.problems())


def test_queue_entries_show_the_init_image():
    init = Image.new("RGB", (64, 32), (0, 0, 255))
    request = GenerationRequest.create(prompt="x", mode=Mode.IMG2IMG).replace()
    with_init = SimpleNamespace(request=GenerationRequest.create(prompt="x", inputs=Inputs.from_pil(init)))
    assert init_icon(SimpleNamespace(request=request)).isNull()
    icon = init_icon(with_init)
    assert not icon.isNull() and icon.pixmap(48, 48).toImage().pixelColor(10, 10).blue() == 255
