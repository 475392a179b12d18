"""start_lesson warns when the machine is busier than it has cores: the lesson's timings are then this load's."""

import os

import pytest

from attention_course.core import lesson as lesson_module
from attention_course.core.lesson import load_warning, start_lesson


def test_load_above_the_cores_warns_and_names_both():
    warning = load_warning(load=5.3, cores=2)
    assert warning and "5.3" in warning and "2 cores" in warning and "timings" in warning.lower()


@pytest.mark.parametrize("load", [0.0, 1.9, 2.0])
def test_load_within_the_cores_says_nothing(load):
    assert load_warning(load=load, cores=2) is None


def test_no_load_average_on_this_system_says_nothing(monkeypatch):
    def no_load():
        raise OSError("no load average")

    monkeypatch.setattr(lesson_module.os, "getloadavg", no_load)
    assert load_warning() is None


@pytest.mark.parametrize("load, warned", [(os.cpu_count() * 3 + 1.0, True), (0.1, False)])
def test_start_lesson_prints_the_warning_only_on_a_busy_machine(monkeypatch, capsys, load, warned):
    monkeypatch.setenv("ATTENTION_COURSE_PROFILE", "smoke")
    monkeypatch.delenv("ATTENTION_COURSE_DEVICE", raising=False)
    monkeypatch.setattr(lesson_module.os, "getloadavg", lambda: (load, load, load))
    lesson = start_lesson("08")
    out = capsys.readouterr().out
    assert out.startswith("Lesson 08: device") and lesson.profile == "smoke"
    assert ("machine is busy" in out) is warned, out
