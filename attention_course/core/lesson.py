"""What every lesson does first and last: say where it runs, at what size, and how long it took."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from types import SimpleNamespace

import torch

from .device import device_name, pick_device, seed_everything
from .profiles import LESSONS, pick_profile, sizes


@dataclass
class Lesson:
    """A running lesson: its device, size profile and start time."""

    number: str
    device: torch.device
    profile: str
    started: float = field(default_factory=time.perf_counter)

    @property
    def sizes(self) -> SimpleNamespace:
        """This lesson's sizes for its profile (the table ``profiles.LESSONS[number]``)."""
        if self.number not in LESSONS:
            raise KeyError(f"lesson {self.number} has no size table in attention_course/core/profiles.py (LESSONS)")
        return sizes(LESSONS[self.number], self.profile)

    @property
    def hardware(self) -> str:
        return device_name(self.device)

    def done(self) -> float:
        """Print and return the wall time since the lesson started."""
        elapsed = time.perf_counter() - self.started
        print(f"Lesson {self.number} ran top to bottom in {elapsed:.0f} s on {self.hardware} (profile '{self.profile}').")
        return elapsed


def load_warning(load: float | None = None, cores: int | None = None) -> str | None:
    """A warning when the machine is busier than it has cores, else None.

    ``load`` is the 1-minute load average (read from the system when None; None where the system has none, as
    on Windows) and ``cores`` the machine's logical cores (``os.cpu_count()`` when None). Above one runnable
    process per core, the lesson's timings (and the choices made from them: the fastest or the cheapest variant)
    are this run's, on this load.
    """
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):  # no load average here: nothing to warn about
            return None
    cores = cores or os.cpu_count() or 1
    if load <= cores:
        return None
    return (f"Warning: this machine is busy (load average {load:.1f} on {cores} cores). Timings in this lesson, and "
            "any choice made from them (the fastest or the cheapest variant), will be slower and noisier than on a "
            "quiet machine: close other work and rerun for numbers you can compare.")


def start_lesson(number: str, seed: int = 0) -> Lesson:
    """Seed everything, pick the device and profile, and print them (with a warning on a busy machine)."""
    seed_everything(seed)
    device = pick_device()
    lesson = Lesson(number, device, pick_profile(device))
    print(f"Lesson {number}: device {device.type} ({lesson.hardware}), profile '{lesson.profile}', torch {torch.__version__}")
    warning = load_warning()
    if warning:
        print(warning)
    return lesson
