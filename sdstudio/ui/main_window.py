"""The studio window: prompt and parameter docks, the result view, menus, banner, status bar.

Integration points for the other parts of the studio (canvas, history):
- `add_center_page(widget, title)`: a page beside "Result" in the centre (e.g. the canvas).
- `add_dock(widget, title, area)`: a dock whose place is saved with the layout (e.g. history).
- `set_image_provider(provider)`: where img2img / inpaint take the init image and mask from.
- `request_fields()` / `apply_fields(fields)`: read or fill prompt + parameters by
  parameter name (engine/parameters.py; "reuse parameters", PNG drop).
- `attach_canvas(canvas)`: the canvas is where img2img / inpaint take the init image and mask.
- `set_input_source(id)`: the lineage of the init image (e.g. the history file it came from),
  recorded with every result made from it; cleared when the canvas gets another picture.
- `lineage_of(result or path, then)`: calls then(lineage id) of a picture shown, once known
  (the history sets it: a fresh result's once it is saved), the parent of what is made from
  it by "Upscale".
- `controller.job_finished(Finished)`: fires once per finished job.
- `report(error, details, level, cause)`: the one way a problem reaches the person; with a
  cause, one banner per cause, and `banner.clear(cause)` once the cause is gone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QByteArray, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QMainWindow,
    QMenu,
    QScrollArea,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from sdstudio.canvas.convert import to_qimage
from sdstudio.engine.backend import builtin_model_available
from sdstudio.engine.events import Finished, ResultImage
from sdstudio.engine.memory import MemoryOptions
from sdstudio.engine.networks import listed_name
from sdstudio.engine.parameters import Mode
from sdstudio.engine.request import (
    BUILTIN_MODEL,
    GenerationRequest,
    Inputs,
    ModelInfo,
    ModelRef,
)
from sdstudio.settings import Settings, SettingsStore
from sdstudio.ui.controller import GenerationController
from sdstudio.ui.errors import Banner, Level, Problem, problem_from
from sdstudio.ui.icons import icon
from sdstudio.ui.memory_menu import MemoryMenu
from sdstudio.ui.model_menu import ModelMenu
from sdstudio.ui.param_panel import ParameterPanel
from sdstudio.ui.prompt_panel import PromptPanel
from sdstudio.ui.queue_view import QueueButton
from sdstudio.ui.result_view import ResultView
from sdstudio.ui.shortcuts import ShortcutsDialog
from sdstudio.ui.status import StudioStatusBar
from sdstudio.ui.upscale_menu import file_order, result_order

if TYPE_CHECKING:
    from PIL.Image import Image

    from sdstudio.canvas import Canvas
    from sdstudio.engine.backend import Backend, Capabilities, Upscale
    from sdstudio.ui.result_view import Shown

# Returns (init image RGB or None, mask L or None) for img2img / inpaint; white mask = repaint.
ImageProvider = Callable[[], "tuple[Image | None, Image | None]"]

# Side docks are at least this wide; below WIDE_LAYOUT px the window puts them in one column
# of tabs, so the image keeps at least half the width (parameters ~350 px, history ~400 px).
SIDE_DOCK = 300
WIDE_LAYOUT = 1600
# The window's size at first start, where the screen has room for it and for the title bar and
# borders a window manager adds around it (FRAME_ROOM, at most); else it starts maximised.
FIRST_SIZE = QSize(1280, 860)
FRAME_ROOM = QSize(16, 48)

NO_MODEL_HELP = "Use Model ▸ Open model folder… or Open .safetensors… to load one."


class MainWindow(QMainWindow):
    # An image's parameters were reused (gallery or dropped file): its fields (see
    # `request_fields`, with "model" and "networks"), after the panels took them. Add-ons
    # check the files it names; UI thread.
    parameters_reused = Signal(dict)

    def __init__(
        self,
        store: SettingsStore,
        backend_factory: Callable[[], Backend],
        startup_model: str | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("SD Studio")
        self.setWindowIcon(icon("app"))
        self.store = store
        self.settings, settings_notice = store.load()
        self._startup_model = startup_model or self.settings.model or BUILTIN_MODEL
        self.controller = GenerationController(backend_factory, self)
        self.canvas: Canvas | None = None
        self._input_source: str | None = None
        # The lineage id of a fresh result or a picture file (the history's file); none without one.
        self.lineage_of: Callable[[ResultImage | Path, Callable[[str | None], None]], None] = (
            lambda _picture, then: then(None))
        self._init_image: Image | None = None
        self._last_engine_problem: Problem | None = None  # tagged "model" when it was a load
        self._dock_homes: dict[QDockWidget, Qt.DockWidgetArea] = {}  # for View ▸ Reset layout
        self._image_provider: ImageProvider = lambda: (self._init_image, None)

        self.banner = Banner()
        self.results = ResultView()
        self.center = QTabWidget()
        self.center.setDocumentMode(True)
        self.center.setTabBarAutoHide(True)  # one page needs no tab bar
        self.center.addTab(self.results, "Result")
        central = QWidget()
        column = QVBoxLayout(central)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self.banner)
        column.addWidget(self.center, 1)
        self.setCentralWidget(central)

        self.queue_button = QueueButton(self.controller)
        self.prompt_panel = PromptPanel(self.queue_button)
        self.params = ParameterPanel()
        scroll = QScrollArea()
        scroll.setWidget(self.params)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(self.params.sizeHint().width() + 24)
        self.setCorner(Qt.Corner.TopLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.prompt_dock = self.add_dock(self.prompt_panel, "Prompt", Qt.DockWidgetArea.TopDockWidgetArea)
        self.params_dock = self.add_dock(scroll, "Parameters", Qt.DockWidgetArea.LeftDockWidgetArea)
        self.status = StudioStatusBar()
        self.setStatusBar(self.status)
        self.model_menu = ModelMenu(self)
        self.memory_menu = MemoryMenu(self)
        self.memory_menu.set_options(MemoryOptions.from_json(self.settings.memory))
        self.model_menu.addSeparator()
        self.model_menu.addMenu(self.memory_menu)
        self._build_menus()
        self._connect()
        self._restore(self.settings)
        self.prompt_panel.prompt.setFocus()  # the first thing to do is to write a prompt
        if settings_notice:
            self.report(settings_notice, level=Level.WARNING)

    # ---- integration points -----------------------------------------------------------

    def add_center_page(self, widget: QWidget, title: str) -> int:
        """Add a page to the centre beside "Result"; returns its tab index."""
        return self.center.addTab(widget, title)

    def add_dock(
        self, widget: QWidget, title: str, area: Qt.DockWidgetArea = Qt.DockWidgetArea.RightDockWidgetArea
    ) -> QDockWidget:
        """Add a dock; its place and size are saved and restored with the window layout."""
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock-{title.lower().replace(' ', '-')}")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        self._dock_homes[dock] = area
        if hasattr(self, "view_menu"):
            self.view_menu.addAction(dock.toggleViewAction())
        if self.settings.window_state:
            # A dock added after start-up gets its saved place too.
            self.restoreState(QByteArray.fromBase64(self.settings.window_state.encode()))
        return dock

    def set_image_provider(self, provider: ImageProvider) -> ImageProvider:
        """img2img and inpaint take (init image, mask) from `provider` when Generate is pressed.
        Returns the provider it replaces (a fallback for the new one)."""
        previous, self._image_provider = self._image_provider, provider
        return previous

    def attach_canvas(self, canvas: Canvas, title: str = "Canvas") -> None:
        """Make `canvas` a centre page and the one place init images and masks come from."""
        self.canvas = canvas
        self.add_center_page(canvas, title)

    def set_input_source(self, source: str | None) -> None:
        self._input_source = source

    def upscale(self, order: Upscale) -> None:
        """Queue an upscale job; its result is shown and saved as a generation's is."""
        try:
            self.controller.upscale(order)
        except RuntimeError as exc:
            self.report(f"Could not upscale: {exc}")

    def _upscale_shown(self, shown: Shown, scale: float, upscaler: str) -> None:
        result, path = shown.result, shown.path

        def with_lineage(lineage: str | None) -> None:
            try:
                order = (result_order(result, scale, upscaler, lineage) if result is not None
                         else file_order(path, scale, upscaler, lineage))  # type: ignore[arg-type]
            except OSError as exc:
                self.report(f"Could not read the picture to upscale: {exc}")
                return
            self.upscale(order)

        picture = result if result is not None else path
        if picture is not None:
            self.lineage_of(picture, with_lineage)

    def request_fields(self) -> dict[str, Any]:
        """Prompt, negative prompt and every parameter, by parameter name."""
        return self.prompt_panel.texts() | self.params.request_fields()

    def apply_fields(self, fields: dict[str, Any]) -> None:
        """Fill the prompt and parameters from parameter names (others ignored), e.g.
        `fields_from_infotext(png_text)`."""
        self.prompt_panel.set_texts(fields)
        self.params.apply_fields(fields)

    def report(
        self, error: BaseException | str, details: str = "", level: Level = Level.ERROR, cause: str = ""
    ) -> None:
        """Show a problem in the banner (with its traceback under Details). Never modal."""
        self.banner.show_problem(problem_from(error, details, level, cause))

    # ---- start-up, generate, cancel ---------------------------------------------------

    def start(self) -> None:
        """Start the engine and load the start-up model; the window is already showing."""
        if self._startup_model == BUILTIN_MODEL and not builtin_model_available():
            self.status.set_activity("No model loaded")
            self.report(f"The built-in model is not installed (sdstudio/resources/models/builtin). {NO_MODEL_HELP}", level=Level.WARNING, cause="model")
            return
        self.status.set_activity("Loading engine…")
        self.load_model(ModelRef(self._startup_model))  # starts the backend: its samplers follow

    def load_model(self, ref: ModelRef) -> None:
        # The VAE is the person's choice for this model (Model ▸ VAE), kept in the settings.
        ref = dataclasses.replace(ref, memory=self.memory_menu.options(), vae=self.settings.vaes.get(ref.source, ""))
        self.status.set_activity(f"Loading model {ref.name}…")
        self.controller.load_model(ref)

    def _memory_changed(self, options: MemoryOptions) -> None:
        """Later jobs use the new settings; the backend reloads only for another offload."""
        self.settings.memory = dataclasses.asdict(options)
        if self.controller.model_ref is not None:
            self.controller.model_ref = dataclasses.replace(self.controller.model_ref, memory=options)

    def generate(self) -> None:
        request = self.build_request()
        if request is not None:
            self.save_settings()  # a crash later still keeps this prompt for the next start
            self.controller.generate(request)
            if not self.controller.backend_started or self.controller.model_info is None:
                self.status.set_activity("Waiting for the model to load…")

    def build_request(self) -> GenerationRequest | None:
        """The request from the panels, or None after telling the person what is missing."""
        if self.controller.model_ref is None:
            self.report(f"No model is loaded. {NO_MODEL_HELP}", cause="model")
            return None
        fields = self.request_fields()
        image = mask = None
        if fields["mode"] is not Mode.TXT2IMG:
            image, mask = self._image_provider()
            if image is None:
                self.report(f"{fields['mode'].value} needs an init image: use File ▸ Open init image… or the canvas.", cause="inputs")
                return None
            if fields["mode"] is Mode.INPAINT and mask is None:
                self.report("Inpaint needs a mask: paint one on the canvas.", cause="inputs")
                return None
        self.banner.clear("inputs")
        inputs = Inputs.from_pil(image, mask, source=self._input_source if image is not None else None)
        return GenerationRequest.create(model=self.controller.model_ref, inputs=inputs, **fields)

    def cancel(self) -> None:
        self.controller.cancel_running()

    def open_init_image(self, path: str | None = None) -> None:
        if path is None:
            path, _ = QFileDialog.getOpenFileName(self, "Open init image", "", "Images (*.png *.jpg *.jpeg *.webp *.bmp)")
            if not path:
                return
        if self.canvas is not None:
            # The canvas loader applies EXIF rotation and scales 16-bit pictures.
            if self.canvas.open_file(path):
                self.set_input_source(None)
                self.center.setCurrentWidget(self.canvas)
                if self.params.current_mode() is Mode.TXT2IMG:
                    self.params.apply_fields({"mode": Mode.IMG2IMG})
            return
        from sdstudio.canvas.loading import ImageLoadError, read_image

        try:
            self._init_image = read_image(path)
        except ImageLoadError as exc:
            self.report(str(exc))
            return
        self.set_input_source(None)
        if self.params.current_mode() is Mode.TXT2IMG:
            self.params.apply_fields({"mode": Mode.IMG2IMG})
        self.results.show_preview(to_qimage(self._init_image))

    # ---- wiring -----------------------------------------------------------------------

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.addAction("Open &init image…", lambda: self.open_init_image())
        file_menu.addSeparator()
        file_menu.addAction("&Quit", QKeySequence.StandardKey.Quit, self.close)
        bar.addMenu(self.model_menu)
        gen_menu = bar.addMenu("Gene&rate")
        self.generate_action = QAction("&Generate", self)
        self.generate_action.setShortcuts([QKeySequence("Ctrl+Return"), QKeySequence("Ctrl+Enter")])
        self.cancel_action = QAction("&Cancel", self)
        self.cancel_action.setShortcut(QKeySequence(Qt.Key.Key_Escape))
        self.cancel_action.setEnabled(False)
        gen_menu.addActions([self.generate_action, self.cancel_action])
        gen_menu.addAction("Cancel all &pending", self.controller.cancel_all_pending)
        self.view_menu = bar.addMenu("&View")
        self.view_menu.addAction("&Reset layout", self.reset_layout)
        self.view_menu.addSeparator()
        for dock in (self.prompt_dock, self.params_dock):
            self.view_menu.addAction(dock.toggleViewAction())
        self.help_menu = QMenu("&Help", self)
        shortcuts = self.help_menu.addAction("&Keyboard shortcuts", lambda: ShortcutsDialog(self).open())
        shortcuts.setShortcut(QKeySequence(Qt.Key.Key_F1))
        bar.addMenu(self.help_menu)

    def _connect(self) -> None:
        c = self.controller
        self.generate_action.triggered.connect(self.generate)
        self.cancel_action.triggered.connect(self.cancel)
        self.prompt_panel.prompt.submitted.connect(self.generate)
        self.prompt_panel.negative_prompt.submitted.connect(self.generate)
        self.prompt_panel.generate.clicked.connect(self.generate)
        self.prompt_panel.cancel.clicked.connect(self.cancel)
        self.model_menu.model_chosen.connect(self.load_model)
        c.queue_changed.connect(self._queue_changed)
        self.params.size_from_image.connect(self._size_from_image)
        self.memory_menu.changed.connect(self._memory_changed)
        c.job_started.connect(self._job_started)
        c.step.connect(self._step)
        c.job_finished.connect(self._finished)
        c.job_ended.connect(lambda _request, outcome: self.status.job_ended(outcome))
        c.model_loading.connect(self.status.set_activity)
        c.model_loaded.connect(self._model_loaded)
        c.model_failed.connect(self._model_failed)
        c.problem.connect(self._engine_problem)
        self.results.use_seed.connect(lambda seed: self.apply_fields({"seed": seed}))
        self.results.upscale.connect(self._upscale_shown)
        # Opening a menu never starts the backend nor waits for it (a folder listing or a server).
        self.results.upscalers = lambda: known.upscalers if (known := c.known_capabilities()) else ()
        self.params.set_upscaler_lister(lambda: [listed_name(name) for name in self.results.upscalers()])
        c.capabilities_changed.connect(self._capabilities_changed)
        self.results.problem.connect(self.report)
        # One banner per notice of the running job; the next job's notices replace them.
        c.notice.connect(lambda message: self.report(message, level=Level.INFO, cause=f"job:{message}"))
        for widget_before, widget_after in (
            (self.prompt_panel.prompt, self.prompt_panel.negative_prompt),
            (self.prompt_panel.negative_prompt, self.prompt_panel.generate),
            (self.prompt_panel.generate, self.prompt_panel.cancel),
            (self.prompt_panel.cancel, self.queue_button),
            (self.queue_button, self.params.mode),
        ):
            QWidget.setTabOrder(widget_before, widget_after)

    def _capabilities_changed(self, capabilities: Capabilities) -> None:
        self.params.set_samplers(list(capabilities.samplers))
        self.params.refresh_upscalers()

    def _job_started(self, _request: GenerationRequest, total: int) -> None:
        self.banner.clear("job:")
        self.status.job_started(total)

    def _engine_problem(self, message: str, details: str) -> None:
        self._last_engine_problem = problem_from(message, details)
        self.banner.show_problem(self._last_engine_problem)

    def _size_from_image(self) -> None:
        image, _mask = self._image_provider()
        if image is None:
            self.report("There is no init image yet: open one on the canvas first.", level=Level.INFO)
            return
        self.params.set_size(*image.size)

    def _queue_changed(self) -> None:
        busy = self.controller.running() is not None
        self.cancel_action.setEnabled(busy)
        self.prompt_panel.cancel.setEnabled(busy)

    def _step(self, index: int, total: int, preview: object) -> None:
        if preview is not None:
            self.results.show_preview(preview)
        self.status.step(index, total)

    def _finished(self, event: Finished) -> None:
        self.results.show_results(event.results)
        if event.seeds:
            self.params.set_last_seed(event.seeds[0])

    def _model_loaded(self, ref: ModelRef, info: ModelInfo) -> None:
        self.banner.clear("model")  # a failed load or a missing model is no longer the case
        self.status.model_ready(info, ref.vae)
        if (self.settings.model or BUILTIN_MODEL) != ref.source:
            # A model draws best at the size and CFG it was made for (the built-in one at 128
            # and CFG 5, SD 1.x at 512, SDXL at 1024): a new model starts there, a restart keeps
            # what the person set.
            self.params.follow_model(info)
        else:
            self.params.show_model_defaults(info)
        if ref.source == BUILTIN_MODEL:
            self.settings.model = BUILTIN_MODEL
        else:
            self.settings.remember_model(ref.source)
            self.model_menu.set_recent(self.settings.recent_models)

    def _model_failed(self, ref: ModelRef) -> None:
        self.status.load_ended()
        if self._last_engine_problem is not None:  # the controller reported the failure just now
            self.banner.show_problem(replace(self._last_engine_problem, cause="model"))
        if self.controller.model_info is not None:
            self.status.set_activity("Ready")
        elif ref.source != BUILTIN_MODEL and builtin_model_available():
            # The last model is gone or broken: start on the built-in one rather than nothing.
            self.report(f"Opening the built-in model instead of {ref.name}.", level=Level.INFO, cause="model-fallback")
            self.load_model(ModelRef(BUILTIN_MODEL))
        else:
            self.status.set_activity("No model loaded")

    # ---- settings ---------------------------------------------------------------------

    def _restore(self, settings: Settings) -> None:
        self.model_menu.set_recent(settings.recent_models)
        try:
            self.apply_fields({"prompt": settings.prompt, "negative_prompt": settings.negative_prompt} | settings.params)
        except (TypeError, ValueError) as exc:
            self.params.apply_fields(self.params.default_fields())
            self.report(f"Some saved parameters were not valid ({exc}); defaults are used instead.", level=Level.WARNING)
        if settings.window_geometry:
            self.restoreGeometry(QByteArray.fromBase64(settings.window_geometry.encode()))
        else:
            room = self.screen().availableGeometry().size()
            needed = FIRST_SIZE + FRAME_ROOM
            if room.width() < needed.width() or room.height() < needed.height():
                # resize() sizes the inside of the window: its title bar and borders come on
                # top, so on a small screen the status bar would sit below the screen's edge.
                # Maximised, the window manager fits the whole frame into the free area.
                self.setWindowState(Qt.WindowState.WindowMaximized)
            else:
                self.resize(FIRST_SIZE)
            QTimer.singleShot(0, self.reset_layout)  # docks are sized once laid out
        if settings.window_state:
            self.restoreState(QByteArray.fromBase64(settings.window_state.encode()))

    def save_settings(self) -> None:
        s = self.settings
        s.prompt = self.prompt_panel.prompt.toPlainText()
        s.negative_prompt = self.prompt_panel.negative_prompt.toPlainText()
        s.params = {k: (v.value if isinstance(v, Mode) else v) for k, v in self.params.request_fields().items()}
        s.window_geometry = bytes(self.saveGeometry().toBase64()).decode()
        s.window_state = bytes(self.saveState().toBase64()).decode()
        try:
            self.store.save(s)
        except OSError as exc:
            self.report(f"Could not save settings to {self.store.path}: {exc}")

    def reset_layout(self) -> None:
        """The first-start arrangement, for the window's present size: every dock back home
        and shown; the side docks share one column as tabs unless the window is wide enough
        for them side by side with the image keeping at least half the width."""
        for dock, area in self._dock_homes.items():
            dock.setFloating(False)
            self.addDockWidget(area, dock)
            dock.show()
        sides = [d for d, a in self._dock_homes.items() if a != Qt.DockWidgetArea.TopDockWidgetArea]
        widths = [max(d.widget().minimumSizeHint().width(), d.widget().minimumWidth(), SIDE_DOCK) for d in sides]
        if len(sides) > 1 and self.width() < WIDE_LAYOUT:
            for dock in sides[1:]:
                self.tabifyDockWidget(sides[0], dock)
            sides[0].raise_()
            widths = [max(widths)]
            sides = sides[:1]
        self.resizeDocks(sides, widths, Qt.Orientation.Horizontal)
        # The prompt gets a few lines.
        self.resizeDocks([self.prompt_dock], [self.fontMetrics().lineSpacing() * 12], Qt.Orientation.Vertical)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.save_settings()
        self.controller.close()
        super().closeEvent(event)
