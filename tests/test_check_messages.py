"""The checks' messages in the learner's language: English by default (unchanged), Japanese in the Japanese edition."""

import json
import math
import re

import nbformat
import pytest
import torch
import torch.nn.functional as F
from babel.messages.catalog import Catalog
from test_grading_08 import cheapest_variant
from test_grading_09 import WRONG as WRONG_09
from test_grading_lesson10 import WRONG as WRONG_10
from test_grading_lesson11 import WRONG as WRONG_11
from test_grading_mistakes import WRONG as WRONG_01_07
from test_i18n import english_left

from attention_course.core.language import LANG_ENV, SESSION_ENV, notebook_language
from attention_course.grading import check, hint
from attention_course.grading._compare import CheckFailed, fail
from attention_course.grading._messages import tr, translate
from attention_course.grading.hints import HINTS
from attention_course.tools import check_messages
from attention_course.tools.execute import execute


@pytest.fixture
def english(monkeypatch):
    monkeypatch.delenv(LANG_ENV, raising=False)
    monkeypatch.delenv(SESSION_ENV, raising=False)


@pytest.fixture
def japanese(monkeypatch):
    monkeypatch.delenv(SESSION_ENV, raising=False)
    monkeypatch.setenv(LANG_ENV, "ja")


def japanese_left_in_english(message: str) -> list[str]:
    """Runs of four English words in a Japanese message, once the task id (the first word) and the Python reprs of
    data ('tuned on test', a problem name the task defines) are set aside."""
    return english_left(re.sub(r"'[^'\n]*'", " ", message.split(":", 1)[-1].split("：", 1)[-1]))


# --- English: the default, as it was -------------------------------------------------------------------------------
def test_english_is_the_default_and_reads_as_before(english, capsys):
    with pytest.raises(CheckFailed) as failure:
        fail("02.x", "T=3", torch.zeros(2), None, "a hint")
    assert str(failure.value) == ("02.x: case 'T=3' failed.\n  expected: tensor of shape (2,), dtype torch.float32, "
                                  "first values [0, 0]\n  got:      None\n  hint: a hint")
    hint("01.rnn_step", 2)
    assert capsys.readouterr().out == ("Hint 2/3 for 01.rnn_step: `@` multiplies matrices: x_t @ w_xh has shape (B, d_h), "
                                       "and so has h_prev @ w_hh. Add them and b_h.  (more: hint('01.rnn_step', 3))\n")
    check("02.causal_mask", lambda n: torch.ones(n, n, dtype=torch.bool).tril())
    assert capsys.readouterr().out == "\N{WHITE HEAVY CHECK MARK} 02.causal_mask: passed (4 cases checked).\n"


def test_english_templates_are_their_own_text():
    for template in check_messages.templates():
        assert translate(template, "en") == template


def test_a_language_the_course_does_not_speak_gives_english_not_a_crash(monkeypatch):
    monkeypatch.setenv(LANG_ENV, "xx")
    with pytest.raises(CheckFailed, match=r"case 'T=\d+' failed"):
        check("02.causal_mask", lambda n: torch.ones(n, n, dtype=torch.bool).triu())


# --- Japanese ------------------------------------------------------------------------------------------------------
def _top_left_causal(q, k, v, ck, cv):
    ck, cv = torch.cat([ck, k], -2), torch.cat([cv, v], -2)
    return F.scaled_dot_product_attention(q, ck, cv, is_causal=True), ck, cv


WRONG_08 = [  # lesson 08's plausible mistakes (tests/test_grading_08.py checks their English hints)
    ("08.kv_cache_step", _top_left_causal, ""),
    ("08.latency_percentile", lambda t, q: sum(t) / len(t), ""),
    ("08.latency_percentile", lambda t, q: sorted(t)[max(0, math.ceil(q / 100 * len(t)) - 1)], ""),
    ("08.cost_per_million", lambda r, p: p * 1e6 / (60 * r), ""),
    ("08.cost_per_million", lambda r, p: p / (3600 * r), ""),
    ("08.cheapest_variant", lambda rows, a, p: cheapest_variant(rows, 0.0, p), ""),
    ("08.distillation_loss", lambda s, t, y, temperature, alpha: F.cross_entropy(s, y), ""),
]
WRONG = [(task_id, answer) for task_id, answer, *_ in WRONG_01_07 + WRONG_08 + WRONG_09 + WRONG_10 + WRONG_11]


@pytest.mark.parametrize("task_id, answer", WRONG, ids=[f"{t}-{i}" for i, (t, _) in enumerate(WRONG)])
def test_a_failing_check_speaks_japanese(japanese, task_id, answer):
    with pytest.raises(AssertionError) as failure:
        check(task_id, answer, seed=1)
    message = str(failure.value)
    assert message.startswith(task_id), message
    assert "ケース" in message or "：" in message, message
    assert not japanese_left_in_english(message), message


def test_every_hint_and_the_pass_line_speak_japanese(japanese, capsys):
    for task_id, stages in HINTS.items():
        for stage in range(1, len(stages) + 1):
            hint(task_id, stage)
            out = capsys.readouterr().out
            assert out.startswith(f"{task_id} のヒント {stage}/{len(stages)}："), out
            assert not japanese_left_in_english(out), out
    check("02.causal_mask", lambda n: torch.ones(n, n, dtype=torch.bool).tril())
    assert capsys.readouterr().out == "\N{WHITE HEAVY CHECK MARK} 02.causal_mask：合格です（4 ケースを確認しました）。\n"


def test_where_the_learners_code_raised_it_is_japanese_too(japanese):
    from attention_course.grading._display import format_failure

    def broken(n):
        raise ValueError("my bug")

    with pytest.raises(CheckFailed) as failure:
        check("02.causal_mask", broken)
    shown = format_failure(failure.value)
    assert "関数が ValueError を送出しました：my bug" in shown and "コードで例外が起きた場所：" in shown, shown


def test_a_refused_answer_is_told_why_in_japanese(japanese):
    """The sandbox describes a refusal inside its audit hook (no language lookup there); the check translates it."""
    from attention_course.core import attention

    with pytest.raises(CheckFailed) as failure:
        check("02.causal_mask", lambda n: attention.causal_mask(n))
    message = str(failure.value)
    assert "採点しません。関数の動作：本講座のライブラリの attention_course.core.attention.causal_mask を呼びました。" in message
    assert not japanese_left_in_english(message), message


def test_a_team_challenge_refuses_in_japanese_and_keeps_the_leaderboards_format(japanese):
    from attention_course.grading.challenges import ChallengeFailed, challenge_message, check_challenge

    with pytest.raises(ChallengeFailed) as failure:
        check_challenge("challenge.accuracy_200_labels", {"predict": len, "train_texts": [str(i) for i in range(201)]})
    assert str(failure.value) == "challenge.accuracy_200_labels：ラベル付きの文を 201 件使っています。上限は 200 件です"
    assert challenge_message("challenge.x", 0.5, "詳細").endswith("challenge.x: score=0.5000 (詳細)")


def test_a_refusal_stays_the_same_english_text(english):
    from attention_course.grading._messages import deferred, localised

    text = deferred("reads the worked solutions ({path})", path="solutions/02.ipynb")
    assert text == "reads the worked solutions (solutions/02.ipynb)" == localised(text)


def test_a_class_grade_job_in_japanese_gets_japanese_verdicts(monkeypatch):
    """grading.isolated runs with a cleared environment: the job says the language (``lang``)."""
    from attention_course.grading.isolated import grade_tasks

    monkeypatch.setenv(LANG_ENV, "en")  # restored after the test (grade_tasks sets it for its children)
    cells = [{"index": 0, "source": "import torch\ndef causal_mask(T):\n    return torch.ones(T, T).bool().triu()"}]
    tasks = [{"task": "02.causal_mask", "answer": "causal_mask", "cell": 1, "hidden": []},
             {"task": "02.padding_mask", "answer": "padding_mask", "cell": 1, "hidden": []}]
    job = {"cells": cells, "tasks": tasks, "timeout": 60, "nonce": "n1", "lang": "ja"}
    wrong, missing = grade_tasks(job)
    assert not wrong["passed"] and wrong["message"].startswith("02.causal_mask：ケース「T="), wrong
    assert missing["message"] == "02.padding_mask：このチェックを実行する時点で `padding_mask` が定義されていません"
    assert not japanese_left_in_english(wrong["message"])


# --- the catalog ---------------------------------------------------------------------------------------------------
def test_every_template_has_a_translation_with_the_same_fields_and_the_mo_is_current():
    assert check_messages.problems("ja") == []
    assert len(check_messages.templates()) > 600


def test_no_translation_leaves_an_english_sentence_in():
    left = {message.string: found for message in check_messages.read_catalog("ja")
            if message.id and (found := english_left(message.string))}
    assert not left


def test_the_catalog_check_can_fail():
    wanted = {"the shape should be {shape}": ["x.py:1"], "no fields": ["x.py:2"], "untranslated": ["x.py:3"]}
    catalog = Catalog(locale="ja")
    catalog.add("the shape should be {shape}", "形状が違います")  # a field went missing
    catalog.add("no fields", "{extra} フィールドなし")  # a field that the English does not fill
    catalog.add("gone", "消えたテンプレート")
    found = check_messages.problems("ja", catalog, wanted)
    assert any("fields differ" in line and "{shape}" in line for line in found), found
    assert any("fields differ" in line and "no fields" in line for line in found), found
    assert any("no translation" in line or "not in" in line for line in found if "untranslated" in line), found
    assert any("obsolete" in line and "gone" in line for line in found), found
    assert len(found) == 4


def test_a_missing_field_would_fail_loudly_not_print_a_hole():
    with pytest.raises(KeyError):
        tr("{task_id}: passed ({cases} cases checked).", task_id="01.x")


# --- the Japanese notebooks ----------------------------------------------------------------------------------------
def test_a_japanese_notebook_folder_means_japanese_checks(monkeypatch):
    monkeypatch.delenv(LANG_ENV, raising=False)
    for path, lang in (("exercises-ja/02_self_attention.ipynb", "ja"), ("exercises/02_self_attention.ipynb", None),
                       ("/home/me/course/notebooks-ja/05_x.ipynb", "ja")):
        assert notebook_language(path) == lang
        monkeypatch.setenv(SESSION_ENV, path)
        assert tr("no mask") == ("マスクなし" if lang else "no mask")


def test_a_headless_run_of_a_japanese_notebook_prints_japanese_checks(tmp_path):
    """execute() tells the kernel the notebook's path as Jupyter Server does, so the code cells need no change."""
    cell = ("import torch\nfrom attention_course.grading import check\n"
            "try:\n    check('02.causal_mask', lambda n: torch.ones(n, n, dtype=torch.bool).triu())\n"
            "except AssertionError as e:\n    print(str(e).splitlines()[0])")
    for folder, expected in (("exercises-ja", "02.causal_mask：ケース「T="), ("exercises", "02.causal_mask: case 'T=")):
        source = tmp_path / folder / "x.ipynb"
        source.parent.mkdir()
        nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell)]), source)
        ok, _ = execute(source, tmp_path / "out" / folder / "x.ipynb", timeout=300)
        outputs = json.loads((tmp_path / "out" / folder / "x.ipynb").read_text())["cells"][0]["outputs"]
        assert ok and expected in "".join("".join(o.get("text", "")) for o in outputs), outputs
