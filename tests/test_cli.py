import importlib.metadata
import json

from attention_course.course import find_root
from attention_course.tools import cli


def test_doctor_passes_on_a_complete_setup(capsys):
    assert cli.main(["doctor", "--json"]) == 0
    checks = json.loads(capsys.readouterr().out)
    assert all(check["ok"] for check in checks)
    assert any("Rotten Tomatoes" in check["check"] for check in checks)
    assert any(check["check"].startswith("device") for check in checks)


def test_doctor_names_the_fix_for_a_missing_package(monkeypatch, capsys):
    real_version = importlib.metadata.version

    def without_bertviz(name):
        if name == "bertviz":
            raise importlib.metadata.PackageNotFoundError(name)
        return real_version(name)

    monkeypatch.setattr(importlib.metadata, "version", without_bertviz)
    assert cli.main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "FIX  bertviz" in out and "make lab" in out and "1 problem(s) to fix." in out


def test_exercises_outside_a_course_folder_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["exercises", "--check"]) == 2
    assert "no course checkout" in capsys.readouterr().err
    (tmp_path / "solutions").mkdir()  # a folder with solutions/ is not a course: the marker decides
    (tmp_path / "notebooks").mkdir()
    assert cli.main(["exercises", "--check"]) == 2
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "attention-course"\n')
    assert find_root(tmp_path / "solutions") == tmp_path.resolve()
