"""Self-grading checks for the exercise notebooks: ``check(task_id, answer)``, and ``hint(task_id, stage)`` for hints.

Every lesson's tasks register themselves in ``TASKS`` when its module is imported below.
"""

from . import (  # noqa: F401  (each module registers its tasks on import; builds: the parts' build-and-hit-a-target tasks)
    builds,
    lesson01,
    lesson02,
    lesson03,
    lesson04,
    lesson05,
    lesson06,
    lesson07,
    lesson08,
    lesson09,
    lesson10,
    lesson11,
)
from ._core import TASKS, check, known_tasks
from ._integrity import seal as _seal
from .hints import hint

_seal()  # what check() compares PyTorch, NumPy and the course's modules with

__all__ = ["TASKS", "check", "hint", "known_tasks"]
