"""The Japanese edition from one source: English pages and notebooks, Japanese prose in gettext catalogs.

How it fits together (book/locales/README.md says why this mechanism):
- ``extract`` runs Sphinx's own gettext builder (through Jupyter Book 1) over the staged book: one message per
  paragraph, heading, list item, table cell and figure description of every page and notebook, exactly the units
  the site's build looks up when it is built with ``language = "ja"``;
- ``update`` merges those messages into ``book/locales/ja/LC_MESSAGES/<page>.po`` with sphinx-intl: a changed
  English paragraph leaves its old translation marked fuzzy (stale), never silently in place;
- ``coverage`` compares the catalogs with a fresh extraction, per source, against the reviewed list of sources
  not yet translated (``book/locales/untranslated.txt``);
- ``notebooks`` writes Japanese notebooks for JupyterLab (``notebooks-ja/``, ``exercises-ja/``, ``solutions-ja/``,
  generated, not committed; siblings of the English folders so that relative paths such as ``../results`` hold):
  each markdown cell's paragraphs replaced by their catalog translation; code cells, outputs and cell ids are the
  English notebook's own. A Japanese notebook a learner edited is never overwritten.
  One kind of line inside code is prose too: the hint comment above each exercise stub (``# Hint: ...``). Each is a
  message of its exercise's catalog (``add_code_messages`` adds them to the extraction, so a changed hint turns its
  translation stale like any paragraph), and the Japanese notebook gets the translated line in its place; every
  other byte of the code cell is the English one.

Command line: ``attention-course i18n {update,check,notebooks}``.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..core.course import course
from ..core.language import GENERATED_METADATA, NOTEBOOK_FOLDERS, localised_folder
from .code_messages import (  # noqa: F401 (re-exported: the catalogs' readers also import them from here)
    CATALOGS,
    HINT_COMMENT,
    HINT_LINE,
    LANGUAGE,
    LOCALES,
    code_messages,
    read_catalog,
    translate_code,
    translate_code_cell,
    translations,
)

ROOT = course().root
UNTRANSLATED_LIST = LOCALES / "untranslated.txt"
# Messages with no words to translate: math, code, numbers, names of files.
LATIN_WORD = re.compile(r"[A-Za-z]{2,}")


# --- messages ------------------------------------------------------------------------------------------------------
def needs_translation(msgid: str) -> bool:
    """Whether a message holds English words (math, inline code, links' targets and bare names aside)."""
    text = re.sub(r"\$\$.*?\$\$|\$[^$]*\$|`[^`]*`|\]\([^)]*\)|<[^>]+>|https?://\S+", " ", msgid, flags=re.DOTALL)
    if msgid.lstrip().startswith(("\\", "\\begin")) or re.fullmatch(r"[\\{}^_ a-zA-Z0-9().,=+\-*/|!&<>:;\[\]'~]*", msgid) \
            and "\\" in msgid:
        return False  # a display-math block
    return bool(LATIN_WORD.search(text))





# --- extraction (Sphinx's gettext builder) --------------------------------------------------------------------------
def extract(output: Path) -> Path:
    """Stage the English book and run Sphinx's gettext builder on it; return the folder of .pot files."""
    from . import book

    source = book.stage(output / "book-source")
    command = [str(Path(sys.executable).parent / "jupyter-book"), "build", str(source), "--path-output", str(output / "pot"),
               "--builder", "custom", "--custom-builder", "gettext", "-qq"]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    pot_dir = output / "pot" / "_build" / "gettext"
    add_code_messages(pot_dir)
    return pot_dir


def templates(pot_dir: Path) -> dict[str, Path]:
    """{source page ("notebooks/02_self_attention"): its .pot} for every English source."""
    return {pot.relative_to(pot_dir).with_suffix("").as_posix(): pot for pot in sorted(pot_dir.rglob("*.pot"))}


def update(output: Path | None = None) -> list[str]:
    """Extract the messages and merge them into the catalogs (sphinx-intl); return the pages updated."""
    from sphinx_intl import basic

    with tempfile.TemporaryDirectory(prefix="attention-i18n-") as scratch:
        pot_dir = extract(Path(output or scratch))
        basic.update(str(LOCALES), str(pot_dir), (LANGUAGE,), line_width=100)
        reuse_translations()
        return sorted(templates(pot_dir))


def reuse_translations(catalogs: Path = CATALOGS) -> int:
    """Fill empty entries from translations that already exist: an exercise's instructions from its solution's
    catalog (always, replacing what was there: one source, solutions/), and any other recurring English (a heading such as "Summary") in the
    pages that are being translated, i.e. not on the list of untranslated sources (a listed page may still be
    rewritten in English: a reused translation there would turn stale under its author); and an exercise stub's
    hint line from the checks' translation of its nudge (``hint_translation``). Returns how many."""
    from babel.messages.pofile import write_po

    listed = read_untranslated_list() if UNTRANSLATED_LIST.exists() else {}
    nudges = check_translations()
    memory: dict[str, str] = {}
    paths = sorted(catalogs.rglob("*.po"))
    for path in paths:
        memory.update(translations(path))
    filled = 0
    for path in paths:
        name = path.relative_to(catalogs).with_suffix("").as_posix()
        solution = catalogs / f"solutions/{name.split('/', 1)[1]}.po" if name.startswith("exercises/") else None
        source = translations(solution) if solution else {}
        if name not in listed:
            source = {**memory, **source}
        catalog = read_catalog(path)
        changed = 0
        from_solution = translations(solution) if solution else {}
        for message in catalog:
            if message.id in from_solution and message.string != from_solution[message.id]:
                message.string = from_solution[message.id]  # an exercise's prose is its solution's: keep them equal
                message.flags.discard("fuzzy")
                changed += 1
            elif message.id and not message.string and not message.fuzzy and message.id in source:
                message.string = source[message.id]
                changed += 1
            elif message.id and not message.string and not message.fuzzy and hint_translation(message.id, nudges):
                message.string = hint_translation(message.id, nudges)  # a stub's hint line: its nudge's reviewed
                changed += 1  # Japanese, on any page (the line is generated from the same nudge as hint() prints)
        if changed:
            with path.open("wb") as handle:
                write_po(handle, catalog, width=100, omit_header=False)
            filled += changed
    return filled


# --- prose inside code cells: the exercises' hint comments ---------------------------------------------------------
# Sphinx extracts no code, and code is shared by both languages; but the hint line the exercise generator writes above
# each stub is prose a learner reads. Only that line (``code_messages.HINT_COMMENT``) is a message: other comments
# (``# NBVAL_IGNORE_OUTPUT``) are markers, and the code itself is never translated.
CODE_MESSAGE_FOLDERS = ("exercises",)
CODE_MESSAGE_COMMENT = "the hint line above a stub in a code cell (one line)"


def _source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


HINT_MESSAGE = re.compile(r'^Hint: (?P<nudge>.+) More: (?P<call>hint\("[^"]+"\))$', re.DOTALL)


def hint_translation(msgid: str, nudges: dict[str, str]) -> str | None:
    """A hint line's Japanese built from the checks' own translation of its nudge (``nudges``: {English: Japanese}
    of grading/locales, what ``hint("NN.task")`` prints), or None where the line is not a hint or its nudge has none:
    the stub and ``hint()`` then say the same words in Japanese as they do in English."""
    match = HINT_MESSAGE.match(msgid)
    if match is None or match["nudge"] not in nudges:
        return None
    return f"ヒント：{nudges[match['nudge']]}（詳しくは {match['call']}）"


def check_translations() -> dict[str, str]:
    """{English: Japanese} of the checks' messages (grading/locales), the nudges of ``hint()`` among them."""
    from ..grading._messages import DOMAIN, LOCALE_DIR

    return translations(LOCALE_DIR / LANGUAGE / "LC_MESSAGES" / f"{DOMAIN}.po")


def add_code_messages(pot_dir: Path, root: Path | None = None, folders: tuple[str, ...] = CODE_MESSAGE_FOLDERS) -> int:
    """Add the hint lines of each notebook of ``folders`` (under ``root``, the course by default) to its .pot in
    ``pot_dir`` (made if Sphinx wrote none), after the page's own messages; returns how many were added."""
    from babel.messages.catalog import Catalog
    from babel.messages.pofile import read_po, write_po

    added = 0
    for folder in folders:
        for path in sorted(((root or ROOT) / folder).glob("*.ipynb")):
            notebook = json.loads(path.read_text(encoding="utf-8"))
            messages = [m for cell in notebook["cells"] if cell["cell_type"] == "code" for m in code_messages(_source(cell))]
            if not messages:
                continue
            pot = pot_dir / folder / f"{path.stem}.pot"
            if pot.exists():
                with pot.open("rb") as handle:
                    template = read_po(handle)
            else:
                template = Catalog()
            for message in messages:
                if message not in template:
                    template.add(message, auto_comments=[CODE_MESSAGE_COMMENT])
                    added += 1
            pot.parent.mkdir(parents=True, exist_ok=True)
            with pot.open("wb") as handle:
                write_po(handle, template, width=0)
    return added


# --- coverage ---------------------------------------------------------------------------------------------------
@dataclass
class Coverage:
    """What a source's catalog holds against the source's current messages."""

    total: int = 0  # messages that need translating
    translated: int = 0
    untranslated: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)  # fuzzy, or a translation whose English is gone

    @property
    def complete(self) -> bool:
        return not self.untranslated and not self.stale


def read_untranslated_list(path: Path = UNTRANSLATED_LIST) -> dict[str, str]:
    """{source page: why it is not translated yet} from the reviewed list (``page  # reason`` lines)."""
    listed = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        name, _, why = line.partition("#")
        if name.strip():
            listed[name.strip()] = why.strip()
    return listed


def coverage(pot_dir: Path, catalogs: Path = CATALOGS) -> dict[str, Coverage]:
    """Per source page, how much of it its catalog translates."""
    from babel.messages.pofile import read_po

    report = {}
    for name, pot in templates(pot_dir).items():
        with pot.open("rb") as handle:
            wanted = [m.id for m in read_po(handle) if m.id and needs_translation(m.id)]
        result = Coverage(total=len(wanted))
        po = catalogs / f"{name}.po"
        if po.exists():
            catalog = read_catalog(po)
            done = {m.id: m.string for m in catalog if m.id and m.string and not m.fuzzy}
            result.stale = [m.id for m in catalog if m.id and m.string and m.fuzzy]
            result.stale += [m.id for m in getattr(catalog, "obsolete", {}).values() if m.string]
            current = set(wanted) | {m.id for m in read_po(pot.open("rb")) if m.id}
            result.stale += [msgid for msgid in done if msgid not in current]
        else:
            done = {}
        result.untranslated = [msgid for msgid in wanted if msgid not in done]
        result.translated = result.total - len(result.untranslated)
        report[name] = result
    return report


def coverage_problems(report: dict[str, Coverage], listed: dict[str, str]) -> list[str]:
    """Every way the catalogs and the reviewed list disagree: an empty list means CI passes."""
    problems = []
    for name, result in report.items():
        if result.stale:
            problems.append(f"STALE {name}: {len(result.stale)} translations of English that changed or is gone "
                            f"(first: {result.stale[0][:80]!r}); run `attention-course i18n update` and re-translate")
        if result.untranslated and name not in listed:
            problems.append(f"UNTRANSLATED {name}: {len(result.untranslated)} of {result.total} messages "
                            f"(first: {result.untranslated[0][:80]!r}); translate them or list the page in "
                            f"{UNTRANSLATED_LIST.relative_to(ROOT)} (reviewed)")
        if not result.untranslated and name in listed:
            problems.append(f"LISTED BUT TRANSLATED {name}: remove it from {UNTRANSLATED_LIST.relative_to(ROOT)}")
    for name in listed:
        if name not in report:
            problems.append(f"UNKNOWN {name} in {UNTRANSLATED_LIST.relative_to(ROOT)}: no such source page")
    return problems


# --- Japanese notebooks -------------------------------------------------------------------------------------------
def _markdown_parser():
    from markdown_it.renderer import RendererHTML
    from myst_parser.config.main import MdParserConfig
    from myst_parser.parsers.mdit import create_md_parser

    return create_md_parser(MdParserConfig(enable_extensions={"dollarmath", "amsmath", "colon_fence"}), RendererHTML)


def _message(content: str) -> str:
    return content.replace("\n", " ").strip()


def translate_markdown(source: str, catalog: dict[str, str], used: set[str] | None = None) -> str:
    """A markdown cell with each paragraph, heading, list item and table cell that the catalog translates
    replaced by its translation (one line each; list markers, heading marks and table pipes kept)."""
    lines = source.split("\n")
    edits = []  # (line, end line, the English content, its translation, a table cell?)
    tokens = _markdown_parser().parse(source)
    for index, token in enumerate(tokens):
        if token.type != "inline" or not token.map:
            continue
        message = _message(token.content)
        if message not in catalog:
            continue
        in_cell = index > 0 and tokens[index - 1].type in ("th_open", "td_open")
        edits.append((token.map[0], token.map[1], token.content, catalog[message], in_cell))
        if used is not None:
            used.add(message)
    for start, end, content, japanese, in_cell in sorted(edits, key=lambda edit: edit[0], reverse=True):
        first = content.split("\n")[0]
        if in_cell:
            cells = lines[start].split("|")
            lines[start] = "|".join(f" {japanese} " if cell.strip() == content.strip() else cell for cell in cells)
            continue
        at = lines[start].find(first)
        if at < 0:
            raise ValueError(f"cannot place the translation of {content[:60]!r}: the markdown is not as parsed")
        lines[start:end] = [lines[start][:at] + japanese]
    return "\n".join(lines)


GENERATED = GENERATED_METADATA  # notebook metadata: the language and a fingerprint of what was generated


def japanese_folder(folder: str) -> str:
    """Where the Japanese notebooks of ``folder`` go: a sibling folder (``notebooks-ja``), so that a lesson's
    relative paths (``../results``) still lead where they do from the English notebook. The widgets read the
    language from this folder name (``core.language``): a Japanese notebook needs no code of its own."""
    return localised_folder(folder, LANGUAGE)


def japanese_notebook(notebook: dict, catalog: dict[str, str]) -> tuple[dict, set[str]]:
    """The notebook with its markdown and its code cells' hint lines translated (every other line of code, and the
    outputs, untouched) and the messages used."""
    translated, used = copy.deepcopy(notebook), set()
    for cell in translated["cells"]:
        if cell["cell_type"] == "markdown":
            cell["source"] = translate_markdown(_source(cell), catalog, used)
        elif cell["cell_type"] == "code" and code_messages(_source(cell)):
            cell["source"] = translate_code_cell(cell["source"], catalog, used)
        alt = cell.get("metadata", {}).get("mystnb", {}).get("image", {}).get("alt")
        if alt and alt in catalog:
            cell["metadata"]["mystnb"]["image"]["alt"] = catalog[alt]
            used.add(alt)
    return translated, used


def _fingerprint(notebook: dict) -> str:
    """A hash of a notebook's cells (what a learner edits), to tell a generated notebook from an edited one."""
    import hashlib

    cells = [{"type": c["cell_type"], "source": "".join(c["source"]) if isinstance(c["source"], list) else c["source"]}
             for c in notebook.get("cells", [])]
    return hashlib.sha256(json.dumps(cells, ensure_ascii=False, sort_keys=True).encode()).hexdigest()


def edited_by_learner(path: Path) -> bool:
    """Whether a Japanese notebook on disk differs from what was generated there (or was not generated at all)."""
    try:
        notebook = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return True
    recorded = notebook.get("metadata", {}).get(GENERATED, {}).get("fingerprint")
    return recorded != _fingerprint(notebook)


@dataclass
class Written:
    """What ``write_notebooks`` did."""

    written: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)  # edited by a learner: left as they are


def write_notebooks(root: Path | None = None, folders: tuple[str, ...] = NOTEBOOK_FOLDERS, force: bool = False) -> Written:
    """Write the Japanese notebooks (``notebooks-ja/``, ``exercises-ja/``, ``solutions-ja/`` under ``root``, the
    course by default): one for every notebook with a catalog. A Japanese notebook a learner edited is never
    overwritten (``force`` replaces it and keeps the learner's as ``.bak``). Code, outputs and cell ids are the
    English notebook's at the time this runs: regenerate after a pull. The notebooks are signed (trusted)."""
    root = root or ROOT
    report = Written()
    for folder in folders:
        for path in sorted((ROOT / folder).glob("*.ipynb")):
            catalog = translations(CATALOGS / folder / f"{path.stem}.po")
            if not catalog:
                continue
            japanese, _ = japanese_notebook(json.loads(path.read_text(encoding="utf-8")), catalog)
            japanese.setdefault("metadata", {})[GENERATED] = {"language": LANGUAGE, "source": f"{folder}/{path.name}",
                                                              "fingerprint": _fingerprint(japanese)}
            out = root / japanese_folder(folder) / path.name
            text = json.dumps(japanese, ensure_ascii=False, indent=1) + "\n"
            if out.exists() and edited_by_learner(out):
                if not force:
                    report.kept.append(out)
                    continue
                out.with_suffix(".ipynb.bak").write_bytes(out.read_bytes())
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(text, encoding="utf-8")
            _sign(out)
            report.written.append(out)
    return report


def _sign(path: Path) -> None:
    """Trust a generated notebook, so JupyterLab shows its stored outputs (as ``attention-course trust`` does)."""
    try:
        import nbformat
        from nbformat.sign import NotebookNotary
    except ImportError:  # the Jupyter stack is absent: the notebook still opens, its rich outputs wait for trust
        return
    NotebookNotary().sign(nbformat.read(path, as_version=4))


# --- command line ---------------------------------------------------------------------------------------------------
def add_parser(commands) -> None:
    i18n = commands.add_parser("i18n", help="the Japanese edition: update catalogs, check coverage, write Japanese notebooks")
    i18n.add_argument("action", choices=["update", "check", "notebooks"],
                      help="update: merge the English messages into book/locales (a changed paragraph becomes stale); "
                           "check: coverage per page against book/locales/untranslated.txt (exit 1 on a problem); "
                           "notebooks: write Japanese notebooks into notebooks-ja/, exercises-ja/, solutions-ja/")
    i18n.add_argument("--root", type=Path, help="notebooks: write the -ja folders under this folder (default: the course)")
    i18n.add_argument("--force", action="store_true",
                      help="notebooks: also replace Japanese notebooks you edited (yours is kept as .bak)")


def run(args) -> int:
    if args.action == "update":
        for name in update():
            print(f"updated {CATALOGS.relative_to(ROOT) / name}.po")
        return 0
    if args.action == "notebooks":
        report = write_notebooks(args.root, force=args.force)
        for path in report.written:
            print(f"wrote {path}")
        for path in report.kept:
            print(f"edited by you: {path} left untouched; `attention-course i18n notebooks --force` regenerates it "
                  "and keeps yours as a .bak copy")
        return 0
    with tempfile.TemporaryDirectory(prefix="attention-i18n-") as scratch:
        report = coverage(extract(Path(scratch)))
    listed = read_untranslated_list()
    for name, result in report.items():
        share = result.translated / result.total if result.total else 1.0
        print(f"{name:45s} {result.translated:4d}/{result.total:<4d} {share:6.1%}" + (" (listed)" if name in listed else ""))
    problems = coverage_problems(report, listed)
    print("\n".join(problems) if problems else "every translation is current; untranslated pages are all on the list")
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m attention_course.tools.i18n", description=__doc__)
    add_parser(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(["i18n", *(argv or sys.argv[1:])]))


if __name__ == "__main__":
    sys.exit(main())
