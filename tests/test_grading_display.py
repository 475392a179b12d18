"""A failed check shows the learner its case, expected/got and hint first: in Jupyter, IPython and scripts."""

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from attention_course.grading import _display, check
from attention_course.grading._core import CheckFailed

ROOT = Path(__file__).resolve().parent.parent
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def failure_of(task_id, answer):
    with pytest.raises(CheckFailed) as failure:
        check(task_id, answer, seed=3)
    return failure.value


def shown(failure):
    return ANSI.sub("", "".join(failure._render_traceback_()))


def test_ipython_shows_the_message_not_the_grader():
    text = shown(failure_of("02.causal_mask", lambda t: None))
    assert text.startswith("CheckFailed: 02.causal_mask: case 'T=")
    assert "expected:" in text and "got:" in text and "hint:" in text
    assert "_core.py" not in text and "File " not in text


def learner_answer(t):
    helper = t * 2
    return 1 / (helper - helper)


def test_a_crash_in_the_answer_shows_the_learners_own_lines_after_the_message():
    text = shown(failure_of("02.causal_mask", learner_answer))
    assert text.startswith("CheckFailed: 02.causal_mask: case 'T=") and "ZeroDivisionError" in text.splitlines()[0]
    where = text.split("Where your code raised it:")[1]
    assert "learner_answer" in where and "1 / (helper - helper)" in where
    assert "attention_course" not in where


def run_python(code):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def test_a_script_prints_a_short_failure_and_exits_with_an_error():
    result = run_python("""
        from attention_course.grading import check
        check("02.causal_mask", lambda t: None)
    """)
    assert result.returncode == 1
    err = result.stderr[result.stderr.index("CheckFailed"):]
    assert err.startswith("CheckFailed: 02.causal_mask: case 'T="), result.stderr
    assert "Traceback" not in err and "_core.py" not in err and len(err.splitlines()) <= 8, err


def test_the_script_hook_passes_other_errors_on(monkeypatch, capsys):
    seen = []
    monkeypatch.setattr(sys, "excepthook", lambda *exc: seen.append(exc[0]))
    _display.install_display(CheckFailed)
    sys.excepthook(ValueError, ValueError("not a check"), None)
    assert seen == [ValueError]
    sys.excepthook(CheckFailed, CheckFailed("02.x: case 'c' failed."), None)
    assert seen == [ValueError] and capsys.readouterr().err.startswith("CheckFailed: 02.x: case 'c' failed.")


@pytest.mark.slow
def test_an_ipython_session_shows_the_message_first():
    result = run_python("""
        from IPython.core.interactiveshell import InteractiveShell
        shell = InteractiveShell.instance()
        shell.run_cell("from attention_course.grading import check")
        shell.run_cell("check('02.causal_mask', lambda t: None)")
    """)
    out = ANSI.sub("", result.stdout)
    assert out.lstrip().startswith("CheckFailed: 02.causal_mask: case 'T="), out
    assert "_core.py" not in out and "Traceback" not in out, out


@pytest.mark.slow
def test_a_notebook_cell_shows_the_message_first_and_stops_an_endless_loop(tmp_path):
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("from attention_course.grading import check"),
        nbformat.v4.new_code_cell("def answer(t):\n    return t / 0\n\ncheck('02.causal_mask', answer)"),
        nbformat.v4.new_code_cell("def forever(t):\n    while True:\n        pass\n\n"
                                  "check('02.causal_mask', forever, time_limit=0.5)")])
    NotebookClient(notebook, timeout=120, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    error = [out for out in notebook.cells[1].outputs if out.output_type == "error"][0]
    text = ANSI.sub("", "\n".join(error.traceback))
    assert error.ename == "CheckFailed"
    assert text.startswith("CheckFailed: 02.causal_mask: case 'T=") and "ZeroDivisionError" in text.splitlines()[0]
    assert "_core.py" not in text and "return t / 0" in text and len(text.splitlines()) < 20, text
    stopped = [out for out in notebook.cells[2].outputs if out.output_type == "error"][0]
    assert stopped.ename == "CheckFailed" and "your function was stopped" in stopped.evalue  # the time limit in Jupyter
