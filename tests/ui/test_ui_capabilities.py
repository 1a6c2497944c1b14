"""What the backend can do, as the window learns it: asked on a thread (a folder listing or a
server never holds the window), answers of a backend switched away from dropped."""

from __future__ import annotations

import threading

from sdstudio.engine.backend import Capabilities
from sdstudio.engine.request import Family
from sdstudio.ui.controller import GenerationController


class SwitchedBackend:
    """Answers with the name it has when asked; the "old" one answers only once `gate` opens."""

    def __init__(self) -> None:
        self.name = "old"
        self.gate = threading.Event()
        self.asked_on: list[threading.Thread] = []

    def capabilities(self) -> Capabilities:
        name = self.name
        self.asked_on.append(threading.current_thread())
        if name == "old":
            self.gate.wait(10)
        return Capabilities(name, ("Euler",), frozenset(Family), frozenset())


def test_capabilities_are_asked_on_a_thread_and_a_switch_drops_the_old_backends_answer(qtbot, qloop):
    backend = SwitchedBackend()
    controller = GenerationController(lambda: backend)
    changed: list[Capabilities] = []
    controller.capabilities_changed.connect(changed.append)
    assert controller.known_capabilities() is None  # nothing started, nothing asked
    controller.jobs  # noqa: B018  # the backend starts: the first ask is on its way
    qtbot.waitUntil(lambda: len(backend.asked_on) == 1, timeout=5000)
    assert controller.known_capabilities() is None  # the old backend has not answered

    backend.name = "new"
    controller.forget_capabilities()
    qtbot.waitUntil(lambda: [c.name for c in changed] == ["new"], timeout=5000)
    backend.gate.set()  # the old answer comes late, and is dropped
    qtbot.wait(300)
    assert [c.name for c in changed] == ["new"] and controller.known_capabilities().name == "new"
    assert threading.main_thread() not in backend.asked_on
