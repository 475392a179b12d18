"""What every lesson does first and last: say where it runs, at what size, and how long it took."""

from __future__ import annotations

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
            raise KeyError(f"lesson {self.number} has no size table in attention_course/profiles.py (LESSONS)")
        return sizes(LESSONS[self.number], self.profile)

    @property
    def hardware(self) -> str:
        return device_name(self.device)

    def done(self) -> float:
        """Print and return the wall time since the lesson started."""
        elapsed = time.perf_counter() - self.started
        print(f"Lesson {self.number} ran top to bottom in {elapsed:.0f} s on {self.hardware} (profile '{self.profile}').")
        return elapsed


def start_lesson(number: str, seed: int = 0) -> Lesson:
    """Seed everything, pick the device and profile, and print them."""
    seed_everything(seed)
    device = pick_device()
    lesson = Lesson(number, device, pick_profile(device))
    print(f"Lesson {number}: device {device.type} ({lesson.hardware}), profile '{lesson.profile}', torch {torch.__version__}")
    return lesson
