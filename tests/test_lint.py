"""The code style stays clean: ruff over the library, tests and every notebook."""


def test_ruff_is_clean():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "attention_course", "tests", "notebooks", "solutions",
                           "exercises"], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:]
