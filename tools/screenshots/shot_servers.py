"""Screenshots of generating on ComfyUI servers: the connect dialog after a connection test, a
remote run with its live preview, and the queue view over two busy servers and a lost one.

Usage: python tools/screenshots/shot_servers.py OUTDIR   (run under xvfb-run by `make screenshots`)
Starts two real local ComfyUI servers as the tests do (tests/contract/comfy_server.py); where
ComfyUI cannot be installed it says so and makes no pictures.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from PySide6.QtCore import QPoint, QTimer  # noqa: E402

from tools.screenshots.studio_shots import StudioShots  # noqa: E402

PROMPT = "a lighthouse on a cliff at dusk, warm light, oil painting"


def main(outdir: Path) -> int:
    from tests.contract.comfy_server import CHECKPOINT, free_port, start_server

    try:
        servers = [start_server(), start_server()]
    except BaseException as exc:  # noqa: BLE001 - pytest.skip outside pytest: no ComfyUI here
        print(f"shot_servers: no ComfyUI server ({exc}); no pictures made")
        return 0
    try:
        return shoot(outdir, [s.url for s in servers], CHECKPOINT, f"http://127.0.0.1:{free_port()}")
    finally:
        for server in servers:
            server.stop()


def shoot(outdir: Path, urls: list[str], checkpoint: str, dead: str) -> int:
    from sdstudio.ui.server_dialog import ServerDialog

    shots = StudioShots(outdir, "servers", server=urls[0], model=checkpoint)
    window, controller = shots.window, shots.controller
    several = ", ".join([*urls, dead])

    def connect_dialog(*_args: object) -> None:
        controller.model_loaded.disconnect(connect_dialog)
        dialog = ServerDialog([urls[0], several], urls[0], parent=window)
        dialog.show()
        dialog.tested.connect(lambda *_: QTimer.singleShot(300, lambda: (grab(dialog), dialog.close(), generate())))
        dialog.test()

    def grab(dialog: ServerDialog) -> None:
        path = outdir / "servers_connect.png"
        dialog.grab().save(str(path))
        shots.paths.append(str(path))

    def generate() -> None:
        window.apply_fields({"prompt": PROMPT, "width": 128, "height": 128, "steps": 16, "seed": 42,
                             "batch_size": 1, "batch_count": 1})
        controller.step.connect(on_step)
        controller.job_finished.connect(on_first_finished)
        window.generate()

    def on_step(index: int, total: int, _preview: object) -> None:
        if index == total * 3 // 4:
            controller.step.disconnect(on_step)
            shots.save("generating")

    def on_first_finished(*_args: object) -> None:
        controller.job_finished.disconnect(on_first_finished)
        controller.model_loaded.connect(on_several)
        window.model_menu.server_chosen.emit(several, "")  # two servers and one that is down

    def on_several(*_args: object) -> None:
        controller.model_loaded.disconnect(on_several)
        for seed in (1, 2, 3, 4):
            window.apply_fields({"seed": seed, "steps": 24, "batch_count": 2})
            window.generate()
        QTimer.singleShot(4000, show_queue)

    def show_queue() -> None:
        button, menu = window.queue_button, window.queue_button.menu()
        button.refresh()
        # Right-aligned under the button, so the whole menu lies within the grabbed window.
        menu.popup(button.mapToGlobal(QPoint(button.width() - menu.sizeHint().width(), button.height())))
        QTimer.singleShot(800, finish)

    def finish() -> None:
        shots.save_screen("queue")
        window.queue_button.menu().hide()
        controller.cancel_all_pending()
        controller.cancel_running()
        shots.quit_after(500)

    controller.model_loaded.connect(connect_dialog)
    return shots.run()


if __name__ == "__main__":
    raise SystemExit(main(Path(sys.argv[1])))
