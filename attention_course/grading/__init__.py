"""Self-grading checks for the exercise notebooks: ``check(task_id, answer)``.

Every lesson's tasks register themselves in ``TASKS`` when its module is imported below.
"""

from . import lesson01, lesson02, lesson03, lesson04, lesson05, lesson06, lesson07  # noqa: F401  (registers)
from . import lesson08  # noqa: F401  (registers)
from . import lesson09  # noqa: F401  (registers)
from . import lesson10  # noqa: F401  (registers)
from . import builds  # noqa: F401  (registers the parts' build-and-hit-a-target tasks)
from ._core import TASKS, check, known_tasks

__all__ = ["TASKS", "check", "known_tasks"]
