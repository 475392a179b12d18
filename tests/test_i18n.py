"""The Japanese edition from one source (book/locales/README.md): every English source is translated or on the
reviewed list of what is left, no translation is stale, translations keep the source's numbers and leave no
English sentence, the Japanese notebooks share the English code and outputs, and the Japanese site is lang="ja",
switches language on every page and finds the source's own words."""

import html.parser
import json
import re
import shutil

import pytest

from attention_course.tools import book, i18n

pytestmark = pytest.mark.slow  # one run of Sphinx's gettext builder (about 10 s) or the site


@pytest.fixture(scope="module")
def pot_dir(tmp_path_factory):
    return i18n.extract(tmp_path_factory.mktemp("gettext"))


def translated_entries():
    """(catalog, English, Japanese) for every current translation of every catalog."""
    found = []
    for po in sorted(i18n.CATALOGS.rglob("*.po")):
        found += [(po.relative_to(i18n.CATALOGS).as_posix(), english, japanese)
                  for english, japanese in i18n.translations(po).items()]
    return found


# --- coverage and staleness ---------------------------------------------------------------------------------------
def test_every_source_is_translated_or_listed_and_nothing_is_stale(pot_dir):
    report = i18n.coverage(pot_dir)
    assert len(report) >= 40 and "notebooks/02_self_attention" in report  # the extraction saw every source
    assert not i18n.coverage_problems(report, i18n.read_untranslated_list())


def test_some_sources_are_translated(pot_dir):
    report = i18n.coverage(pot_dir)
    done = [name for name, result in report.items() if result.total and not result.untranslated]
    assert {"intro", "paths", "run"} <= set(done), done


def test_text_written_in_each_language_is_not_a_message(pot_dir):
    # lesson 10's memo and cost table are written in English and Japanese by code (memo.md, memo.ja.md): the
    # gettext build leaves them out of the catalog of the page that includes them, and keeps the page's own text
    report = i18n.coverage(pot_dir)
    assert report["decision/lesson10"].total and report["decision/glossary"].total
    lesson10 = (pot_dir / "decision" / "lesson10.pot").read_text(encoding="utf-8")
    for generated in ("Decision memo: automatic triage of review sentences", "Next stage", "majority class"):
        assert f'msgid "{generated}"' not in lesson10, generated  # a heading of the memo, one of its table's cells
    assert "*A note on this run.*" in lesson10  # the page's paragraph after the included memo's last heading
    costs = (pot_dir / "decision" / "cloud_vs_onprem.pot").read_text(encoding="utf-8")
    assert 'msgid "USD / month at 10,000 a day"' not in costs and 'msgid "Beyond the price"' in costs  # cells: not messages
    assert "From the lesson-08 measurements" in costs
    # the Japanese of each such file lies beside it, and no Japanese page stands in for an English one any more
    for name in ("memo", "cloud_table"):
        assert (book.ROOT / "book" / "decision" / f"{name}.{i18n.LANGUAGE}.md").is_file()
    assert not list((book.ROOT / "book" / i18n.LANGUAGE).glob("*.md"))  # the retired book/ja/<page>.md


def catalog_copy(tmp_path):
    copy = tmp_path / "locales"
    shutil.copytree(i18n.LOCALES, copy)
    return copy / i18n.LANGUAGE / "LC_MESSAGES"


def test_a_changed_english_paragraph_makes_its_translation_stale(pot_dir, tmp_path):
    # the maintainer's workflow on a changed source: `i18n update` (sphinx-intl) keeps the old translation as fuzzy
    from sphinx_intl import basic

    catalogs = catalog_copy(tmp_path)
    english = next(iter(i18n.translations(catalogs / "intro.po")))
    changed = tmp_path / "pot"
    (changed / "intro.pot").parent.mkdir(parents=True)
    text = (pot_dir / "intro.pot").read_text(encoding="utf-8")
    assert f'msgid "{english}"' in text
    (changed / "intro.pot").write_text(text.replace(f'msgid "{english}"', f'msgid "{english} Changed."'), encoding="utf-8")
    basic.update(str(catalogs.parent.parent), str(changed), (i18n.LANGUAGE,), line_width=100)
    report = i18n.coverage(changed, catalogs)
    assert report["intro"].stale and report["intro"].untranslated == [f"{english} Changed."]
    problems = i18n.coverage_problems(report, {})
    assert any(p.startswith("STALE intro") for p in problems) and any(p.startswith("UNTRANSLATED intro") for p in problems)
    # without `update`, the old translation no longer matches any English: stale too
    (catalogs / "intro.po").write_bytes((i18n.CATALOGS / "intro.po").read_bytes())
    assert i18n.coverage(changed, catalogs)["intro"].stale


def test_the_list_of_untranslated_sources_only_shrinks(pot_dir, tmp_path):
    report = i18n.coverage(pot_dir)
    listed = i18n.read_untranslated_list()
    # a translated source on the list fails: the list must shrink as translation goes on
    problems = i18n.coverage_problems(report, {**listed, "intro": "listed by mistake"})
    assert any(p.startswith("LISTED BUT TRANSLATED intro") for p in problems)
    # an untranslated source missing from the list fails
    catalogs = catalog_copy(tmp_path / "emptied")
    emptied = catalogs / "notebooks" / "08_serving.po"
    emptied.write_text(re.sub(r'msgstr "(?:[^"\\]|\\.)+"(\n"(?:[^"\\]|\\.)*")*', 'msgstr ""', emptied.read_text(encoding="utf-8")),
                       encoding="utf-8")
    assert any(p.startswith("UNTRANSLATED notebooks/08_serving")
               for p in i18n.coverage_problems(i18n.coverage(pot_dir, catalogs), listed))
    # a catalog that loses its translations fails (the source is then neither translated nor listed)
    catalogs = catalog_copy(tmp_path)
    (catalogs / "run.po").unlink()
    assert any(p.startswith("UNTRANSLATED run") for p in i18n.coverage_problems(i18n.coverage(pot_dir, catalogs), listed))
    assert any(p.startswith("UNKNOWN") for p in i18n.coverage_problems(report, {**listed, "notebooks/99_nothing": ""}))


# --- what a translation must keep -----------------------------------------------------------------------------------
NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
FULL_WIDTH_DIGITS = str.maketrans("０１２３４５６７８９．，", "0123456789.,")


SCALES = {"万": 10**4, "億": 10**8, "thousand": 10**3, "million": 10**6, "billion": 10**9, "M": 10**6, "B": 10**9}


def numbers(text: str) -> list[str]:
    """The numbers of a text, sorted ("1,000" and "1000" are one number; full-width digits read as digits;
    "a million", "per million", "/ million" and 「100 万」 are the same number, 1000000; "40 thousand" is 40000)."""
    text = text.translate(FULL_WIDTH_DIGITS)
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)
    # "14 to 300 million" is 14 million to 300 million (Japanese writes 「1,400 万〜3 億」)
    text = re.sub(r"(\d+(?:\.\d+)?)(\s+(?:to|and|or)\s+|\s*[-–]\s*)(\d+(?:\.\d+)?)\s+(thousand|million|billion)\b",
                  r"\1 \4\2\3 \4", text)

    def scaled(match: re.Match) -> str:
        value = float(match.group(1) or 1) * SCALES[match.group(2)]  # "124 M parameters", 「450 万文字」
        return f" {value:.0f} "

    # a number before its scale, or "a million", "per million", "USD / million" (a table header: 100 万件あたり)
    text = re.sub(r"(?:(\d+(?:\.\d+)?)\s*|\b(?:a|per|one)\s+(?=thousand|million|billion)|/\s*(?=million|billion))"
                  r"(万|億|thousand|million|billion|M\b|B\b)", scaled, text)
    return sorted(n.rstrip(".,") for n in NUMBER.findall(text))


# Numbers the English spells in words, which Japanese writes in digits (book/locales/STYLE.md, 数と単位)
CARDINALS = {word: value for value, word in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen".split())} | \
    {word: 10 * tens for tens, word in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split(), 2)}
ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8,
            "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "hundredth": 100, "thousandth": 1000}
NUMBER_WORDS = CARDINALS | ORDINALS | {"once": 1, "twice": 2, "single": 1, "zeroing": 0, "zeroes": 0, "zeros": 0,
                                       "dozen": 12, "hundred": 100, "halves": 2,
                                       "quadruple": 4, "quadruples": 4, "quadrupled": 4, "fourfold": 4, "sixfold": 6}
DENOMINATORS = {"third": 3, "quarter": 4} | {word: value for word, value in ORDINALS.items() if value >= 4}
MONTHS = {month: value for value, month in enumerate("January February March April May June July August September "
                                                     "October November December".split(), 1)}
# "an hour", "per second", "each token": one of the unit (Japanese writes 1 時間, 1 秒あたり, 1 トークンごと)
UNITS = ("minute hour day week month year token GPU CPU machine image sentence step request prediction "
         "inspection label core line part batch seat team sequence word character parameter point patch").split()
# Forms that read two ways; every combination of their readings is tried
AMBIGUOUS = (
    # "a second" is a unit (1 秒) or the next one ("a second machine": 2 台目)
    ((r"\b(?:an?|per|each|every)\s+second\b", "1 s"), (r"\bper\s+second\b", "1 s")),
    # "half a point" is 0.5 ポイント or 半ポイント; "half of it" is 2 分の 1 or 半分; "half an hour" is 30 分
    ((r"\bhalf an hour\b", "30 minutes"), (r"\bhalf an hour\b", "0.5 hours")),
    ((r"\b(?:a\s+|one\s+)?half\b", "1/2"), (r"\b(?:a\s+|one\s+)?half\b", "0.5")),
)


def spelled_readings(english: str) -> list[str]:
    """The English with its numbers in words written in digits, once for each reading of its ambiguous forms:
    "six-token" 6-token, "forty" 40, "a fifth" 1/5, "an hour" 1 hour, "28 November 2026" 28 11 2026."""
    import itertools

    text = re.sub(r"\b(" + "|".join(w for w, v in CARDINALS.items() if v >= 20) + r")[- ]("
                  + "|".join(w for w, v in CARDINALS.items() if 0 < v < 10) + r")\b",
                  lambda m: str(CARDINALS[m.group(1).lower()] + CARDINALS[m.group(2).lower()]), english, flags=re.IGNORECASE)
    readings = []
    for choice in itertools.product(*AMBIGUOUS):
        reading = text
        for pattern, digits in choice:
            reading = re.sub(pattern, digits, reading, flags=re.IGNORECASE)
        readings.append(_spelled(reading))
    return list(dict.fromkeys(readings))


def _spelled(text: str) -> str:
    numerators = "|".join(["an?"] + [w for w, v in CARDINALS.items() if 0 < v <= 10])
    text = re.sub(rf"\b({numerators})[ -]({'|'.join(DENOMINATORS)})s?\b",  # "a fifth", "two thirds": 1/5, 2/3
                  lambda m: f"{CARDINALS.get(m.group(1).lower(), 1)}/{DENOMINATORS[m.group(2).lower()]}", text,
                  flags=re.IGNORECASE)
    text = re.sub(rf"\b(?:an?|per|each|every)\s+(?=(?:{'|'.join(UNITS)})s?\b)", "1 ", text, flags=re.IGNORECASE)
    # month names, capitalised ("May" only beside a day or a year: "may" is a verb)
    text = re.sub(r"\b(" + "|".join(m for m in MONTHS if m != "May") + r")\b|\bMay(?=\s+\d)|(?<=\d\s)May\b",
                  lambda m: str(MONTHS[m.group(0)]), text)
    text = re.sub(rf"\b({'|'.join(CARDINALS)})[ -]hundred\b",  # "two hundred": 200
                  lambda m: str(CARDINALS[m.group(1).lower()] * 100), text, flags=re.IGNORECASE)
    return re.sub(r"\b(" + "|".join(NUMBER_WORDS) + r")\b", lambda m: str(NUMBER_WORDS[m.group(1).lower()]), text,
                  flags=re.IGNORECASE)


def number_mismatches(entries):
    """Entries whose translation drops or changes a number of the source, or adds one the source does not say
    (in digits or in words): the multiset of the translation's numbers lies between the two, for some reading of
    the words."""
    from collections import Counter

    wrong = []
    for name, english, japanese in entries:
        digits, translated = Counter(numbers(english)), Counter(numbers(japanese))
        spelled = [Counter(numbers(reading)) for reading in spelled_readings(english)]
        if digits - translated or all(translated - reading for reading in spelled):
            wrong.append(f"{name}: {english[:60]!r} has {sorted(digits.elements())}, the translation {sorted(translated.elements())}")
    return wrong


def test_translations_keep_the_sources_numbers():
    entries = translated_entries()
    assert len(entries) > 50
    assert not number_mismatches(entries)


def test_the_number_check_can_fail():
    assert number_mismatches([("x", "Lesson 02 runs in 1,200 s on 2 cores.", "レッスン 02 は 2 コアで 1,300 秒かかります。")])
    assert not number_mismatches([("x", "1,200 s on 2 cores", "２ コアで 1200 秒")])
    assert not number_mismatches([("x", "a six-token sentence, one key", "6 トークンの文、一つのキー")])
    assert number_mismatches([("x", "a six-token sentence", "7 トークンの文")])
    assert number_mismatches([("x", "Lesson 01 and 02", "レッスン 01")])
    assert not number_mismatches([("x", "cost per million, 2.5 million rows", "100 万件あたりのコスト、250 万行")])
    assert not number_mismatches([("x", "4.5 M characters, 124 M parameters", "450 万文字、124 M パラメータ")])
    assert not number_mismatches([("x", "14 to 300 million images", "1,400 万〜3 億枚の画像")])


def test_the_number_check_reads_numbers_in_words_as_japanese_writes_them():
    # STYLE.md (数と単位): tens, simple fractions, a unit's article, month names, a header's "/ million" in digits
    accepted = [("more than forty times the rate", "速度の 40 倍超"), ("twenty-five steps", "25 ステップ"),
                ("roughly a fifth of the bandwidth", "帯域のおよそ 5 分の 1"), ("a tenth of their words", "単語の 10 分の 1"),
                ("within a quarter of a patch", "パッチの 4 分の 1 以内"),
                ("within half a point of fp32", "fp32 との差が 0.5 ポイント以内"),
                ("keeps half its numbers", "数値の半分を保持"), ("keeps half its numbers", "数値の 2 分の 1 を保持"),
                ("about a minute on a laptop", "ノート PC でおよそ 1 分"), ("6 teams: half an hour", "6 チームなら 30 分"),
                ("costs `p` dollars an hour and makes `n` predictions a second", "1 時間あたり `p` ドル、1 秒あたり `n` 件"),
                ("predictions arrive a day", "予測は 1 日に届きます"), ("tokens per second", "1 秒あたりのトークン数"),
                ("on a second machine", "2 台目のマシンで"), ("Two hundred labelled sentences", "ラベル付きの文が 200 件"),
                ("January 1980 – August 1994", "1980 年 1 月〜1994 年 8 月"), ("a December peak", "12 月のピーク"),
                ("in May 2026", "2026 年 5 月に"),
                ("commit `76cff30`, 28 November 2026, 19:10 UTC", "コミット `76cff30`、2026 年 11 月 28 日 19:10 UTC"),
                ("| p95 (ms) | USD / million |", "| p95 (ms) | 100 万件あたり（ドル） |"),
                ("about 14 to 40 thousand kilolitres", "約 14,000〜40,000 キロリットル"),
                ("roughly quadruples the cost", "コストは約 4 倍"), ("cut the cost more than fourfold", "コストは 4 倍超下がった")]
    assert [(en, ja) for en, ja in accepted if number_mismatches([("x", en, ja)])] == []
    # a wrong number still fails, in words as in digits
    rejected = [("more than forty times the rate", "速度の 50 倍超"), ("roughly a fifth of it", "およそ 4 分の 1"),
                ("within half a point", "差が 5 ポイント以内"), ("about a minute", "およそ 2 分"), ("half an hour", "20 分"),
                ("a second machine", "3 台目のマシン"), ("January 1980", "1980 年 2 月"),
                ("28 November 2026", "2026 年 11 月 27 日"), ("as you may see in 2026", "2026 年 5 月に見るとおり"),
                ("| USD / million |", "| 1,000 件あたり（ドル） |"), ("| USD / million |", "| 百万件あたり（ドル） |"),
                ("about 14 to 40 thousand kilolitres", "約 14〜40 千キロリットル"), ("Two hundred sentences", "20 件の文"),
                ("roughly quadruples the cost", "コストは約 3 倍")]
    assert [(en, ja) for en, ja in rejected if not number_mismatches([("x", en, ja)])] == []


# STYLE.md (数と単位): a number is written in half-width digits. A kanji numeral before a unit or counter (四十倍,
# 五分の一, 一月, 百万件, 一分超) or a full-width digit is a number written another way; counting words (一つ, 二つ目),
# 一度 (once) and words that hold a numeral (一致, 十分, 数十, 唯一, 一通り, 一桁, 千分の数) are not numbers.
KANJI_NUMERAL = "〇一二三四五六七八九十百千"
UNIT_AFTER_NUMBER = "倍|分の(?!数)|か月|ヶ月|カ月|月|日|年|時間|秒|万|億|ポイント|%|％|個|件|回|台|基|枚|ステップ|文|行|割|通り"
KANJI_NUMBER = re.compile(
    rf"(?<![数何幾唯統同単{KANJI_NUMERAL}])(?!一通り)[{KANJI_NUMERAL}]+(?:{UNIT_AFTER_NUMBER})"
    rf"|(?<![数何幾{KANJI_NUMERAL}])(?!十分)[{KANJI_NUMERAL}]+分(?!の)|分の[{KANJI_NUMERAL}]|[０-９]")


def numbers_not_in_digits(japanese: str) -> list[str]:
    """The numbers a translation writes in kanji or full-width digits, outside code and math."""
    text = re.sub(r"\$\$.*?\$\$|\$[^$]*\$|(?<!`)(`+)(?!`).*?(?<!`)\1(?!`)", " ", japanese, flags=re.DOTALL)
    return [match.group(0) for match in KANJI_NUMBER.finditer(text)]


def test_translations_write_numbers_in_half_width_digits():
    entries = translated_entries()
    assert len(entries) > 50
    assert [f"{name}: {found}" for name, _, japanese in entries if (found := numbers_not_in_digits(japanese))] == []


def test_the_numbers_in_digits_check_can_fail():
    for japanese in ("速度の四十倍超", "およそ五分の一", "5 分の一", "1980 年一月", "毎年十二月に", "百万件あたり", "およそ一分です",
                     "二百件", "十二か月", "２ コア", "四回行う"):
        assert numbers_not_in_digits(japanese), japanese
    assert not numbers_not_in_digits("一つのキー、二つ目、もう一度、説明の一致度、十分に速い、十分です、数十ステップ、唯一の候補、"
                                     "一通り読む、一桁速い、千分の数、同一の、`x = 一月`、40 倍超、5 分の 1、1980 年 1 月、100 万件")


# A run of four or more Latin-script words is an English sentence left in; code, math, links' targets, HTML tags
# and these titles and names are not.
NAMES = ("Attention Is All You Need", "Rotten Tomatoes", "Attention in Parallel", "For decision makers")
LATIN_RUN = re.compile(r"[A-Za-z][A-Za-z'’-]*(?:[ \t]+[A-Za-z][A-Za-z'’-]*){3,}")


def english_left(japanese: str) -> list[str]:
    # quoted English data (a figure's tokens: 「the cat sat on the mat」) is data, not a sentence left in
    # a code span opens and closes with the same run of backticks (``a `b` c``), as in Markdown
    text = re.sub(r"\$\$.*?\$\$|\$[^$]*\$|(?<!`)(`+)(?!`).*?(?<!`)\1(?!`)|\]\([^)]*\)|<[^>]+>|https?://\S+|\{[a-z]+\}"
                  r"|「[^」]*」|『[^』]*』", " ", japanese, flags=re.DOTALL)
    # an English gloss closing a parenthesis: 「平均絶対スケール化誤差、mean absolute scaled error）」
    text = re.sub(r"(?<=[（、])[A-Za-z][A-Za-z' -]*(?=）)", " ", text)
    for name in NAMES:
        text = text.replace(name, " ")
    return LATIN_RUN.findall(text)


def test_no_english_sentence_is_left_in_a_translation():
    left = [f"{name}: {found}" for name, english, japanese in translated_entries()
            if (found := english_left(japanese)) and i18n.needs_translation(english)]
    assert not left


def test_the_english_check_can_fail():
    assert english_left("この関数は the scores are scaled by the square root を返します。")
    assert not english_left("`torch.nn.functional.scaled_dot_product_attention` と比べます（Vaswani ほか）。")
    assert not english_left("**MASE**（平均絶対スケール化誤差、mean absolute scaled error）は")
    assert english_left("（the model reads at most 512 tokens and cuts the rest）")
    # a code span in double backticks holds backticks (a message a learner sees); the English around it is still prose
    assert not english_left("そのセルは 0 点：`` `softmax` is not defined when this check runs (... cell 7 was stopped) ``")
    assert english_left("そのセルは 0 点：`` `softmax` `` is not defined when this check runs")
    assert english_left("そのセルは 0 点：`softmax` is not defined when this check runs")


# --- Japanese notebooks for JupyterLab ---------------------------------------------------------------------------
def test_japanese_notebooks_share_code_outputs_and_ids(tmp_path):
    written = i18n.write_notebooks(tmp_path).written
    assert len(written) >= 10, "the catalogs translate lessons 00-03 and their exercises"
    for path in written:
        folder = path.parent.name.removesuffix(f"-{i18n.LANGUAGE}")
        english = json.loads((book.ROOT / folder / path.name).read_text(encoding="utf-8"))
        japanese = json.loads(path.read_text(encoding="utf-8"))
        assert [c.get("id") for c in japanese["cells"]] == [c.get("id") for c in english["cells"]]
        for en, ja in zip(english["cells"], japanese["cells"], strict=True):
            if en["cell_type"] == "code":
                assert ja["outputs"] == en["outputs"], path
                hint_lines(en, ja)  # the code is the English code, but for the hint comments
        # every translation the catalog holds found its paragraph (or figure description) in the notebook, or is of
        # a markdown output (a generated memo): the site translates those, the notebook keeps its outputs as run
        catalog = i18n.translations(i18n.CATALOGS / folder / path.with_suffix(".po").name)
        _, used = i18n.japanese_notebook(english, catalog)
        outputs = " ".join(" ".join(markdown_outputs(english).split()).split())
        unused = {m for m, t in catalog.items() if t != m and " ".join(m.split()) not in outputs} - used
        assert not unused, (path, sorted(unused)[:3])


def hint_lines(english_cell: dict, japanese_cell: dict) -> list[tuple[str, str]]:
    """(English line, Japanese line) for each hint comment of a code cell; every other byte of the cell must be the
    English one (same lines, same line ends, same storage as a list of lines or one string)."""
    assert type(japanese_cell["source"]) is type(english_cell["source"])
    english, japanese = "".join(english_cell["source"]), "".join(japanese_cell["source"])
    english_lines, japanese_lines = english.split("\n"), japanese.split("\n")
    assert len(japanese_lines) == len(english_lines)
    pairs = []
    for en, ja in zip(english_lines, japanese_lines, strict=True):
        if i18n.HINT_LINE.match(en):
            assert i18n.HINT_LINE.match(en)["indent"] + "# " == ja[: len(ja) - len(ja.lstrip()) + 2], (en, ja)
            pairs.append((en, ja))
        else:
            assert ja == en  # code is never translated
    return pairs


def japanese_hint(line: str) -> bool:
    """Whether a hint comment is written in Japanese: starts as the catalogs translate "Hint:", holds kana, and
    leaves no English sentence (the call `hint("NN.task")` aside)."""
    return line.lstrip().startswith("# ヒント：") and bool(re.search(r"[ぁ-んァ-ン]", line)) \
        and not english_left(re.sub(r'hint\("[^"]+"\)', " ", line))


def test_japanese_exercises_show_their_hints_in_japanese_and_the_english_code(tmp_path):
    listed = i18n.read_untranslated_list()
    written = i18n.write_notebooks(tmp_path, folders=("exercises",)).written
    compared = 0
    for path in written:
        english = json.loads((book.ROOT / "exercises" / path.name).read_text(encoding="utf-8"))
        japanese = json.loads(path.read_text(encoding="utf-8"))
        for en, ja in zip(english["cells"], japanese["cells"], strict=True):
            if en["cell_type"] != "code":
                continue
            for english_line, japanese_line in hint_lines(en, ja):
                if f"exercises/{path.stem}" not in listed:
                    assert japanese_hint(japanese_line), (path.name, japanese_line)
                    compared += 1
                else:  # a listed page may wait for its hints: then the English line stays as it is
                    assert japanese_line == english_line or japanese_hint(japanese_line)
    # every exercise that is not on the list of untranslated pages: 4 hints in 01, 5 in 02, ...; none found fails
    expected = sum(len(i18n.code_messages("".join(c["source"]))) for p in sorted((book.ROOT / "exercises").glob("*.ipynb"))
                   if f"exercises/{p.stem}" not in listed
                   for c in json.loads(p.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code")
    assert compared == expected >= 40


def test_the_hint_checks_can_fail():
    english = {"cell_type": "code", "source": ["def f(x):\n", "    # Hint: Add one. More: hint(\"01.f\")\n",
                                                 "    raise NotImplementedError(\"your code here\")"]}
    catalog = {'Hint: Add one. More: hint("01.f")': 'ヒント：1 を足します。（詳しくは hint("01.f")）'}
    japanese = dict(english, source=i18n.translate_code_cell(english["source"], catalog))
    (pair,) = hint_lines(english, japanese)
    assert japanese_hint(pair[1]) and not japanese_hint(pair[0])
    assert japanese["source"][0] == english["source"][0] and japanese["source"][2] == english["source"][2]
    assert not japanese_hint('    # ヒント：Add one and return it to the caller. （詳しくは hint("01.f")）')
    changed = dict(japanese, source=[japanese["source"][0].replace("x", "y"), *japanese["source"][1:]])
    with pytest.raises(AssertionError):
        hint_lines(english, changed)  # a changed line of code is caught
    assert i18n.code_messages("".join(english["source"])) == ['Hint: Add one. More: hint("01.f")']
    assert i18n.code_messages("# NBVAL_IGNORE_OUTPUT\nx = 1  # Hint: not a comment-only line") == []


def test_the_japanese_site_shows_the_exercises_hints_in_japanese(tmp_path):
    source = book.ROOT / "exercises" / "02_self_attention.ipynb"
    english = json.loads(source.read_text(encoding="utf-8"))
    book.stage_notebook(source, tmp_path / "ja.ipynb", "ja")
    staged = json.loads((tmp_path / "ja.ipynb").read_text(encoding="utf-8"))
    pairs = [pair for en, ja in zip(english["cells"], staged["cells"], strict=True) if en["cell_type"] == "code"
             for pair in hint_lines(en, ja)]
    assert len(pairs) == 5 and all(japanese_hint(ja) for _, ja in pairs)
    book.stage_notebook(source, tmp_path / "en.ipynb", "en")
    assert [c["source"] for c in json.loads((tmp_path / "en.ipynb").read_text(encoding="utf-8"))["cells"]] == \
        [c["source"] for c in english["cells"]]


def test_a_changed_english_hint_makes_its_translation_stale(pot_dir, tmp_path):
    from babel.messages.pofile import read_po, write_po
    from sphinx_intl import basic

    name = "exercises/02_self_attention"
    notebook = json.loads((book.ROOT / f"{name}.ipynb").read_text(encoding="utf-8"))
    cell = next(c for c in notebook["cells"] if c["cell_type"] == "code" and i18n.code_messages("".join(c["source"])))
    (hint,) = i18n.code_messages("".join(cell["source"]))
    assert hint in i18n.translations(i18n.CATALOGS / f"{name}.po")  # translated today
    with (pot_dir / f"{name}.pot").open("rb") as handle:
        template = read_po(handle)
    assert hint in template  # the extraction holds the hint lines, so `i18n check` sees them
    # the English exercise with that hint changed, extracted again: the page's paragraphs from Sphinx, its hints here
    for other in notebook["cells"]:
        for message in i18n.code_messages("".join(other["source"])) if other["cell_type"] == "code" else []:
            template.delete(message)
    course = tmp_path / "course"
    (course / "exercises").mkdir(parents=True)
    cell["source"] = "".join(cell["source"]).replace(hint, f"{hint} Changed.")
    (course / f"{name}.ipynb").write_text(json.dumps(notebook), encoding="utf-8")
    changed = tmp_path / "pot"
    (changed / "exercises").mkdir(parents=True)
    with (changed / f"{name}.pot").open("wb") as handle:
        write_po(handle, template)
    assert i18n.add_code_messages(changed, course) == 5
    catalogs = catalog_copy(tmp_path)
    assert i18n.coverage(changed, catalogs)[name].stale == [hint]  # without `update`: its English is gone
    basic.update(str(catalogs.parent.parent), str(changed), (i18n.LANGUAGE,), line_width=100)
    report = i18n.coverage(changed, catalogs)
    assert f"{hint} Changed." in report[name].stale and report[name].untranslated == [f"{hint} Changed."]
    assert any(p.startswith(f"STALE {name}") for p in i18n.coverage_problems(report, {}))
    # the Japanese notebook then shows the new English hint, never the old Japanese
    japanese, _ = i18n.japanese_notebook(notebook, i18n.translations(catalogs / f"{name}.po"))
    (line,) = [ln for c in japanese["cells"] if c["cell_type"] == "code" for ln in "".join(c["source"]).split("\n")
               if "Changed." in ln or f"({hint.split('More: ')[1]}" in ln]
    assert line.strip() == f"# {hint} Changed."


def test_a_hint_line_is_translated_from_its_nudges_reviewed_japanese(tmp_path):
    from babel.messages.pofile import write_po

    catalogs = catalog_copy(tmp_path)
    # emptied hint lines of exercise 02 come back as they are, from the checks' translations of the same nudges
    path = catalogs / "exercises" / "02_self_attention.po"
    catalog = i18n.read_catalog(path)
    hints = {m.id: m.string for m in catalog if m.id and i18n.CODE_MESSAGE_COMMENT in m.auto_comments}
    assert len(hints) == 5
    for message in catalog:
        if message.id in hints:
            message.string = ""
    with path.open("wb") as handle:
        write_po(handle, catalog, width=100)
    assert i18n.reuse_translations(catalogs) == 5
    assert i18n.translations(path).items() >= hints.items()
    # the hint lines that a lesson's rewrite waits for (exercise 08) get their Japanese the same way once extracted
    notebook = json.loads((book.ROOT / "exercises" / "08_serving.ipynb").read_text(encoding="utf-8"))
    lines = [m for c in notebook["cells"] if c["cell_type"] == "code" for m in i18n.code_messages("".join(c["source"]))]
    path = catalogs / "exercises" / "08_serving.po"
    catalog = i18n.read_catalog(path)
    for line in lines:
        catalog.add(line, auto_comments=[i18n.CODE_MESSAGE_COMMENT])
    with path.open("wb") as handle:
        write_po(handle, catalog, width=100)
    i18n.reuse_translations(catalogs)
    filled = i18n.translations(path)
    assert len(lines) == 6 and all(japanese_hint(f"# {filled[line]}") for line in lines)
    assert i18n.hint_translation("Hint: Not a nudge anyone wrote. More: hint(\"01.x\")", i18n.check_translations()) is None
    assert i18n.hint_translation("Not a hint line", {"Not a hint line": "ヒントではない"}) is None


def markdown_outputs(notebook: dict) -> str:
    """The text of every markdown output of a notebook's code cells, one after another."""
    texts = []
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            text = output.get("data", {}).get("text/markdown")
            if text:
                texts.append("".join(text) if isinstance(text, list) else text)
    return "\n".join(texts)


def test_a_japanese_notebook_the_learner_edited_is_never_overwritten(tmp_path):
    first = i18n.write_notebooks(tmp_path, folders=("exercises",)).written
    mine = first[0]
    notebook = json.loads(mine.read_text(encoding="utf-8"))
    notebook["cells"][-1]["source"] = "# 私の答え\n"
    mine.write_text(json.dumps(notebook, ensure_ascii=False), encoding="utf-8")
    again = i18n.write_notebooks(tmp_path, folders=("exercises",))
    assert again.kept == [mine] and mine not in again.written and "私の答え" in mine.read_text(encoding="utf-8")
    forced = i18n.write_notebooks(tmp_path, folders=("exercises",), force=True)
    assert mine in forced.written and "私の答え" in mine.with_suffix(".ipynb.bak").read_text(encoding="utf-8")


def test_translate_markdown_keeps_the_markdown_around_each_paragraph():
    source = ("## Step 1: scores\n\nRow $t$ holds\nevery key.\n\n- a **query**: what it seeks;\n\n"
              "| a | b |\n| --- | --- |\n| lesson | time |")
    catalog = {"Step 1: scores": "ステップ 1：スコア", "Row $t$ holds every key.": "行 $t$ はすべてのキーを持ちます。",
               "a **query**: what it seeks;": "**クエリ**：探すもの", "lesson": "レッスン"}
    out = i18n.translate_markdown(source, catalog)
    assert out == ("## ステップ 1：スコア\n\n行 $t$ はすべてのキーを持ちます。\n\n- **クエリ**：探すもの\n\n"
                   "| a | b |\n| --- | --- |\n| レッスン | time |")


# --- the Japanese site ------------------------------------------------------------------------------------------------
def japanese_pages(site):
    return [name for name in site_pages(site) if name.startswith(f"{book.JAPANESE_SITE}/")]


def site_pages(site):
    """Every HTML page of both sites (theme internals, downloads and redirects aside), as tests/test_book.py."""
    pages = []
    for page in sorted(site.rglob("*.html")):
        name = page.relative_to(site).as_posix()
        if not name.startswith("_") and "/_" not in name and \
                not page.read_text(encoding="utf-8").startswith('<meta http-equiv="Refresh"'):
            pages.append(name)
    return pages


def test_every_japanese_page_is_lang_ja_and_every_page_switches_language(site):
    pages = site_pages(site)
    japanese = japanese_pages(site)
    assert len(japanese) >= 60 and len(pages) - len(japanese) >= 60
    for name in pages:
        page = (site / name).read_text(encoding="utf-8")
        lang = re.search(r'<html lang="([^"]+)"', page).group(1)
        assert lang == ("ja" if name in japanese else "en"), name
        switch = re.search(r'<a class="btn btn-sm course-language-switch" href="([^"]+)" hreflang="(\w+)"', page)
        assert switch, f"{name} has no language switch"
        target = (site / name).parent / switch.group(1)
        assert target.resolve().is_file(), f"{name}: the switch leads to {switch.group(1)}, which is not built"
        other = target.resolve().relative_to(site.resolve()).as_posix()
        assert other == (name[len("ja/"):] if name in japanese else f"ja/{name}"), name  # the same page


class Prose(html.parser.HTMLParser):
    """The article's text outside code, outputs, math and scripts, and how many of its elements are lang="en"."""

    SKIP_TAGS = {"script", "style", "pre", "code", "mjx-container", "math"}
    SKIP_CLASSES = ("cell_output", "cell_input", "headerlink")
    VOID = {"br", "img", "hr", "input", "meta", "link", "wbr", "source"}

    def __init__(self):
        super().__init__()
        self.stack, self.text, self.english, self.in_article = [], [], 0, 0

    def handle_starttag(self, tag, attrs):
        if tag in self.VOID:
            return
        attributes = dict(attrs)
        classes = attributes.get("class") or ""
        skip = tag in self.SKIP_TAGS or any(name in classes for name in self.SKIP_CLASSES)
        article = tag == "article" and "bd-article" in classes
        self.stack.append((tag, skip, article))
        self.in_article += article
        if self.in_article and not self.skipping() and attributes.get("lang") == "en":
            self.english += 1

    def handle_endtag(self, tag):
        while self.stack:
            name, _, article = self.stack.pop()
            self.in_article -= article
            if name == tag:
                break

    def skipping(self):
        return any(skip for _, skip, _ in self.stack)

    def handle_data(self, data):
        if self.in_article and not self.skipping():
            self.text.append(data)


def page_prose(page: str) -> tuple[str, int]:
    """(the article's prose, its elements marked lang="en")."""
    parser = Prose()
    parser.feed(page)
    text = " ".join(parser.text)
    return re.sub(r"\\\(.*?\\\)|\\\[.*?\\\]|\$\$.*?\$\$", " ", text, flags=re.DOTALL), parser.english


def test_translated_pages_leave_no_english_sentence(site):
    listed = i18n.read_untranslated_list()
    checked = []
    for name in japanese_pages(site):
        source = name[len("ja/"):-len(".html")]
        if source in listed or source.startswith(("genindex", "search", "index")):
            continue
        text, english = page_prose((site / name).read_text(encoding="utf-8"))
        assert len(text) > 50 and not english, f"{name}: {english} paragraphs are not translated (lang=en)"
        assert not english_left(text), f"{name}: {english_left(text)[:3]}"
        checked.append(name)
    assert {"ja/intro.html", "ja/run.html", "ja/decision/lesson10.html", "ja/decision/glossary.html"} <= set(checked)


def test_navigation_captions_are_translated(site):
    # the table of contents' parts (book/_toc.yml) on every Japanese page's sidebar, from the home page's catalog
    import yaml

    captions = [part["caption"] for part in yaml.safe_load((book.ROOT / "book" / "_toc.yml").read_text(encoding="utf-8"))["parts"]]
    catalog = i18n.translations(i18n.CATALOGS / "intro.po")
    assert len(captions) >= 8 and all(caption in catalog for caption in captions)
    for name in ("ja/intro.html", "ja/notebooks/02_self_attention.html", "ja/search.html"):
        page = (site / name).read_text(encoding="utf-8")
        sidebar = page[page.find("bd-sidebar-primary"):page.find("</nav>", page.find("bd-sidebar-primary"))]
        assert [catalog[c] for c in captions if catalog[c] not in sidebar] == [], name
        assert [c for c in captions if f">{c}<" in sidebar] == [], name


# The source's own words (the Japanese explainer this course answers) and the terms the issue found missing.
SOURCE_TERMS = ["トランスフォーマー", "アテンション", "セルフアテンション", "マルチモーダル", "説明可能性", "ROI", "TCO",
                "軽量化", "モデル蒸留", "推論", "サービング", "教師モデル", "生徒モデル", "KV キャッシュ", "ゼロショット", "MASE",
                "スピアマン相関", "ドリフト", "シャドー運用", "シード", "ウォームアップ"]


def test_japanese_search_finds_the_sources_words(browser, server):
    missing = []
    for term in SOURCE_TERMS:
        page = browser.new_page()
        page.goto(f"{server}/ja/search.html?q={term}", wait_until="networkidle")
        try:
            page.wait_for_selector("#search-results li", timeout=10000)
            links = page.locator("#search-results li a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
        except Exception:  # no result at all
            links = []
        page.close()
        if not any("decision/glossary" in link for link in links):
            missing.append(term)
    assert not missing, f"the Japanese search does not find the glossary by {missing}"
