"""The command line: the exercises command finds the course only by its marker (doctor: tests/test_doctor.py)."""

from attention_course.course import find_root
from attention_course.tools import cli


def test_exercises_outside_a_course_folder_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["exercises", "--check"]) == 2
    assert "no course checkout" in capsys.readouterr().err
    (tmp_path / "solutions").mkdir()  # a folder with solutions/ is not a course: the marker decides
    (tmp_path / "notebooks").mkdir()
    assert cli.main(["exercises", "--check"]) == 2
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "attention-course"\n')
    assert find_root(tmp_path / "solutions") == tmp_path.resolve()
