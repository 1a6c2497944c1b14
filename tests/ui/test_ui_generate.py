"""The window drives the real engine on a tiny model: generate, preview, cancel, queue."""

from __future__ import annotations

from PySide6.QtCore import Qt

SMALL = {"width": 64, "height": 64, "steps": 3, "batch_size": 1, "batch_count": 1, "seed": 1}


def _job_ended(window, qtbot, timeout=60_000):
    return qtbot.waitSignal(window.controller.job_ended, timeout=timeout)


def test_ctrl_enter_generates_with_live_preview(make_window, qtbot):
    window = make_window()
    window.apply_fields(SMALL)
    before = window.results.view.image().cacheKey()
    previews, shown_during_run = [], set()

    def on_step(index, total, image):
        previews.append(image)
        shown_during_run.add(window.results.view.image().cacheKey())  # the window drew it first

    window.controller.step.connect(on_step)
    qtbot.keyClicks(window.prompt_panel.prompt, "a red fox")
    with qtbot.waitSignal(window.controller.job_finished, timeout=60_000) as finished:
        qtbot.keyClick(window.prompt_panel.prompt, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    (event,) = finished.args
    request, info = event.results[0].request, event.results[0].model
    assert request.prompt.prompt == "a red fox" and request.extent.width == 64
    assert [p for p in previews if p is not None], "no preview reached the view"
    assert shown_during_run - {before}, "the view did not change during the run"
    assert len(event.images) == 1 and info is not None
    shown = window.results.view.image()
    assert shown.cacheKey() != before and shown.width() == 64
    assert window.prompt_panel.prompt.toPlainText() == "a red fox"  # Ctrl+Enter added no newline
    assert window.params.reuse_seed.isEnabled()


def test_batch_fills_thumbnail_strip(make_window, qtbot):
    window = make_window()
    window.apply_fields(SMALL | {"steps": 2, "batch_size": 2, "prompt": "a boat"})
    with qtbot.waitSignal(window.controller.job_finished, timeout=60_000):
        window.generate()
    assert window.results.strip.count() == 2
    assert window.results.strip.isVisibleTo(window)
    window.results.strip.setCurrentRow(1)
    assert window.results.view.image() == window.results.images()[1]


def test_cancel_mid_run(make_window, qtbot):
    window = make_window()
    window.apply_fields(SMALL | {"steps": 30, "prompt": "slow"})
    with _job_ended(window, qtbot) as ended:
        window.generate()
        qtbot.waitSignal(window.controller.step, timeout=60_000).wait()
        qtbot.keyClick(window.prompt_panel.prompt, Qt.Key.Key_Escape)
    assert ended.args[1] == "cancelled"
    assert window.status.activity.text() == "Cancelled"


def test_queue_two_and_cancel_the_pending_one(make_window, qtbot):
    window = make_window()
    outcomes = []
    window.controller.job_ended.connect(lambda request, outcome: outcomes.append((request.prompt.prompt, outcome)))
    window.apply_fields(SMALL | {"steps": 30, "prompt": "first"})
    with qtbot.waitSignal(window.controller.job_started, timeout=60_000):
        window.generate()
    window.apply_fields({"prompt": "second"})
    window.generate()
    assert window.controller.pending() and "Queue: 1" in window.queue_button.text().replace("&", "")
    cancel_second = window.queue_button.menu().actions()[0]
    assert "second" in cancel_second.text()
    cancel_second.trigger()
    qtbot.waitUntil(lambda: len(outcomes) == 2, timeout=60_000)
    assert sorted(outcomes) == [("first", "done"), ("second", "cancelled")]
    assert window.controller.pending() == []


def test_missing_model_shows_banner_and_keeps_previous(make_window, qtbot, tmp_path):
    from sdstudio.engine.request import ModelRef

    window = make_window()
    good = window.controller.model_ref
    with qtbot.waitSignal(window.controller.problem, timeout=60_000):
        window.load_model(ModelRef(str(tmp_path / "no-such-model")))
    assert window.banner.isVisibleTo(window)
    assert "no-such-model" in window.banner.message.text()
    assert window.controller.model_ref == good
    assert window.status.activity.text() == "Ready" and "tiny-sd1" in window.status.model.text()
    recent = [a.text() for a in window.model_menu.recent.actions()]
    assert len(recent) == 1 and good.source in recent[0]  # the bad path never became "recent"
    window.apply_fields(SMALL | {"steps": 2, "prompt": "still works"})
    with qtbot.waitSignal(window.controller.job_finished, timeout=60_000):
        window.generate()
    window.banner.dismiss()
    assert not window.banner.isVisibleTo(window)


def test_img2img_and_inpaint_take_images_from_the_provider(make_window, qtbot, tmp_path):
    from PIL import Image

    from sdstudio.engine.request import Mode

    window = make_window()
    window.apply_fields(SMALL | {"steps": 4, "strength": 0.5, "prompt": "repaint"})
    init_path = tmp_path / "init.png"
    Image.new("RGB", (64, 64), (200, 40, 40)).save(init_path)
    window.open_init_image(str(init_path))
    assert window.params.current_mode() is Mode.IMG2IMG
    with qtbot.waitSignal(window.controller.job_finished, timeout=60_000) as finished:
        window.generate()
    made = finished.args[0].results[0].request
    assert made.inputs.init_image is not None and made.mode is Mode.IMG2IMG

    window.apply_fields({"mode": Mode.INPAINT})
    window.generate()  # no mask yet: the banner says what is missing, nothing is queued
    assert "mask" in window.banner.message.text() and window.controller.pending() == []
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    window.set_image_provider(lambda: (Image.new("RGB", (64, 64), (0, 90, 200)), mask))
    with qtbot.waitSignal(window.controller.job_finished, timeout=60_000) as finished:
        window.generate()
    made = finished.args[0].results[0].request
    assert made.inputs.mask.open().tobytes() == mask.tobytes() and len(finished.args[0].images) == 1
