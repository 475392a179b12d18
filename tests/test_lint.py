"""The code style stays clean: ruff over the library, tests and every notebook."""


def test_ruff_is_clean():
    import subprocess
    import sys
    from pathlib import Path

    from attention_course.tools.exercises import was_edited

    root = Path(__file__).resolve().parent.parent
    # exercises/ as the course ships it; notebooks a learner edited are theirs, not the course's to lint
    exercises = [str(p.relative_to(root)) for p in sorted((root / "exercises").glob("*.ipynb")) if not was_edited(p)]
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "attention_course", "tests", "notebooks", "solutions",
                           *exercises], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:]
