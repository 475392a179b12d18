"""How a failed check looks: the learner's case, expected/got and hint first, then only the learner's own frames.

In Jupyter and IPython ``CheckFailed._render_traceback_`` gives the short form; in a script ``install_display`` sets an
exception hook that does the same. Imports nothing of the grader's but ``_messages``, so ``_compare`` (which defines ``CheckFailed``)
and ``_core`` both use it without a circle.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

from ._messages import tr

_HERE = str(Path(__file__).resolve().parent)


def learner_frames(error: BaseException | None, limit: int = 6) -> str:
    """The traceback of a learner's own exception, without the grader's frames."""
    if error is None or error.__traceback__ is None:
        return ""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if not f.filename.startswith(_HERE)]
    if not frames:
        return ""
    lines = traceback.format_list(frames[-limit:])
    return tr("Where your code raised it:") + "\n" + "".join(lines) + "".join(traceback.format_exception_only(error))


def format_failure(failure: BaseException) -> str:
    text = f"{type(failure).__name__}: {failure}"
    where = learner_frames(getattr(failure, "learner_error", None))
    return text + ("\n\n" + where if where else "")


def _script_excepthook(previous, failure_type: type[BaseException]):
    def hook(etype, value, tb):
        if isinstance(value, failure_type):
            print(format_failure(value), file=sys.stderr)
        else:
            previous(etype, value, tb)

    hook.attention_course_grading = True
    return hook


def install_display(failure_type: type[BaseException]) -> None:
    """Scripts: a ``failure_type`` (the grader's CheckFailed) prints its message (and the learner's frames), not the
    grader's traceback; any other exception goes to the hook that was there before.

    Jupyter/IPython needs nothing here: CheckFailed._render_traceback_ gives IPython the short form.
    """
    ipython = sys.modules.get("IPython")
    if ipython is not None and ipython.get_ipython() is not None:
        return
    if not getattr(sys.excepthook, "attention_course_grading", False):
        sys.excepthook = _script_excepthook(sys.excepthook, failure_type)
