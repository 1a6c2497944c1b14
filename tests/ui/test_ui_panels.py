"""Parameter panel behaviour that needs no engine: mode-dependent controls, sizes, seeds,
and the coalescing of previews in a job stream."""

from __future__ import annotations

from PIL import Image

from sdstudio.engine.events import Finished, Started, Step
from sdstudio.engine.params import fields_from_infotext
from sdstudio.engine.request import Mode
from sdstudio.ui.jobs import JobStream
from sdstudio.ui.param_panel import ParameterPanel


def _visible(panel: ParameterPanel, widget) -> bool:
    return panel._form.isRowVisible(widget)


def test_mode_switch_shows_only_the_controls_it_uses(qtbot):
    panel = ParameterPanel()
    qtbot.addWidget(panel)
    assert not _visible(panel, panel.controls["strength"]) and not _visible(panel, panel.controls["mask_blur"])
    panel.mode.setCurrentIndex(panel.mode.findData(Mode.IMG2IMG))
    assert _visible(panel, panel.controls["strength"]) and not _visible(panel, panel.controls["mask_blur"])
    panel.mode.setCurrentIndex(panel.mode.findData(Mode.INPAINT))
    assert _visible(panel, panel.controls["strength"]) and _visible(panel, panel.controls["mask_blur"]) and _visible(panel, panel.controls["inpaint_padding"])
    panel.mode.setCurrentIndex(panel.mode.findData(Mode.TXT2IMG))
    assert not _visible(panel, panel.controls["strength"])


def test_size_and_cfg_follow_the_model_until_the_person_sets_them(qtbot):
    from sdstudio.engine.request import Family, ModelInfo

    panel = ParameterPanel()
    qtbot.addWidget(panel)
    builtin = ModelInfo("builtin", Family.SD1, False, "cpu", "float32", "builtin", native_size=128, default_cfg=5.0)
    fields = panel.request_fields()
    assert (fields["width"], fields["height"], fields["cfg_scale"]) == (None, None, None)  # the engine decides
    panel.show_model_defaults(builtin)
    assert panel.controls["width"].value() == 128 and panel.controls["cfg_scale"].value() == 5.0
    assert panel.request_fields()["width"] is None
    panel.controls["cfg_scale"].set_value(8)  # the person's choice sticks
    assert panel.request_fields()["cfg_scale"] == 8.0 and panel.request_fields()["width"] is None
    panel.follow_model(ModelInfo("xl", Family.SDXL, False, "cpu", "float32", "xl", native_size=1024))
    assert panel.request_fields()["cfg_scale"] is None and panel.controls["width"].value() == 1024


def test_sizes_snap_to_8_presets_and_swap(qtbot):
    panel = ParameterPanel()
    qtbot.addWidget(panel)
    panel.controls["width"].spin.setValue(515)
    assert panel.request_fields()["width"] == 512
    panel.size_preset.setCurrentIndex(5)
    panel.size_preset.activated.emit(5)  # 512 x 768
    assert (panel.request_fields()["width"], panel.request_fields()["height"]) == (512, 768)
    panel.swap.click()
    assert (panel.request_fields()["width"], panel.request_fields()["height"]) == (768, 512)
    panel.controls["width"].slider.setValue(panel.controls["width"].slider.value() + 1)
    assert panel.request_fields()["width"] == 776


def test_seed_dice_reuse_and_fields_from_a_png_text(qtbot):
    panel = ParameterPanel()
    qtbot.addWidget(panel)
    text = "a cat\nNegative prompt: dog\nSteps: 12, Sampler: DDIM, CFG scale: 6.5, Seed: 4000000000, Size: 640x448"
    panel.apply_fields(fields_from_infotext(text))
    fields = panel.request_fields()
    assert (fields["steps"], fields["sampler"], fields["cfg_scale"]) == (12, "DDIM", 6.5)
    assert (fields["seed"], fields["width"], fields["height"]) == (4_000_000_000, 640, 448)
    panel.random_seed.click()
    assert panel.request_fields()["seed"] == -1
    assert not panel.reuse_seed.isEnabled()
    panel.set_last_seed(77)
    panel.reuse_seed.click()
    assert panel.request_fields()["seed"] == 77


def test_job_stream_keeps_only_the_newest_unread_preview(qloop, qtbot):
    stream = JobStream(qloop, None, None)
    image = Image.new("RGB", (8, 8))
    stream._push(Started(total=3))
    for index in (1, 2, 3):
        stream._push(Step(index, 3, image))
    stream._push(Finished(()))

    async def read():
        return [event async for event in stream]

    task = qloop.create_task(read())
    qtbot.waitUntil(task.done)
    events = task.result()
    assert [type(e).__name__ for e in events] == ["Started", "Step", "Finished"]
    assert events[1].index == 3 and stream.coalesced == 2 and stream.ended


def test_jobs_run_reads_a_real_job_to_its_end(qloop, qtbot, ui_engine, tiny_sd1):
    from sdstudio.engine.request import GenerationRequest, ModelRef
    from sdstudio.ui.jobs import Jobs

    request = GenerationRequest.create(prompt="a kite", steps=2, width=64, height=64, seed=3, model=ModelRef(str(tiny_sd1)))

    async def collect():
        return [event async for event in Jobs(ui_engine).run(request)]

    task = qloop.create_task(collect())
    qtbot.waitUntil(task.done, timeout=60_000)
    kinds = [type(e).__name__ for e in task.result()]
    assert "Started" in kinds and "Step" in kinds and kinds[-1] == "Finished"


def test_theme_is_fusion_and_dark_unless_the_platform_says_light(qapp):
    from PySide6.QtGui import QPalette

    from sdstudio.ui.theme import apply_theme, prefers_light

    style, palette = qapp.style().name(), qapp.palette()
    try:
        apply_theme(qapp)
        assert qapp.style().baseStyle().name().lower() == "fusion"  # Fusion with focus rings
        window = qapp.palette().color(QPalette.ColorRole.Window)
        assert (window.lightness() > 128) == prefers_light()
    finally:
        qapp.setStyle(style)
        qapp.setPalette(palette)


def test_size_from_image_takes_the_init_images_size_snapped(qtbot):
    panel = ParameterPanel()
    qtbot.addWidget(panel)
    asked = []
    panel.size_from_image.connect(lambda: asked.append(True))
    panel.from_image.click()
    assert asked == [True]
    panel.set_size(1001, 30)
    assert (panel.request_fields()["width"], panel.request_fields()["height"]) == (1000, 64)  # 1001 -> 1000, 30 -> min


def test_the_hires_upscaler_offers_the_backends_upscaler_models_and_keeps_a_reused_one(qtbot):
    from PySide6.QtCore import Qt

    panel = ParameterPanel()
    qtbot.addWidget(panel)
    installed = ["4x-UltraSharp", "Lanczos"]  # a model named like a method is the method
    panel.set_upscaler_lister(lambda: installed)
    combo = panel.controls["hires_upscaler"]
    panel.show()
    qtbot.waitExposed(panel)
    combo.setFocus()  # the keyboard reaches it: listed afresh
    qtbot.waitUntil(combo.hasFocus)
    items = [combo.itemText(i) for i in range(combo.count())]
    assert items[-1] == "4x-UltraSharp" and items.count("Lanczos") == 1
    qtbot.keyClick(combo, Qt.Key.Key_End)  # the last entry, by keyboard
    assert panel.request_fields()["hires_upscaler"] == "4x-UltraSharp"

    panel.apply_fields(fields_from_infotext("a\nSteps: 4, Hires upscale: 2, Hires upscaler: 4x-AnimeSharp"))
    assert panel.request_fields()["hires_upscaler"] == "4x-AnimeSharp"  # not installed here: kept, the job says so
    installed.clear()
    combo.refresh()
    assert combo.currentText() == "4x-AnimeSharp" and combo.findText("4x-UltraSharp") < 0
