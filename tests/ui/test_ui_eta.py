"""The time left comes from the measured pace of the steps, never from the warm-up step."""

from __future__ import annotations

import pytest

from sdstudio.ui import status as status_module
from sdstudio.ui.status import StepClock, StudioStatusBar


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_warm_up_step_does_not_count(qtbot, monkeypatch):
    clock = Clock()
    monkeypatch.setattr(status_module.time, "monotonic", clock)
    bar = StudioStatusBar()
    qtbot.addWidget(bar)
    bar.job_started(20)
    clock.now += 3.0  # step 1: warm-up
    bar.step(1, 20)
    assert "left" not in bar.progress.format()  # one step says nothing about the pace yet
    for index in range(2, 6):
        clock.now += 0.25
        bar.step(index, 20)
    # 15 steps at 0.25 s; the average over all five steps would say 12 s.
    assert bar.progress.format() == "step 5/20 · 4 s left"


def test_skipped_steps_and_a_hiccup_do_not_skew_the_pace():
    clock = StepClock()
    clock.start()
    for index, when in [(1, 5.0), (3, 6.0), (4, 6.5), (5, 9.5), (6, 10.0), (7, 10.5)]:
        clock.step(index, when)
    # per step: 0.5 (steps 2-3 arrived together), 0.5, 3.0 (a hiccup), 0.5, 0.5 -> median 0.5
    assert clock.seconds_left(7, 27) == pytest.approx(10.0)
