"""Execute lesson notebooks headless into an output folder: ``python -m attention_course.tools.execute NB... --output DIR``.

This is how the published outputs are produced on a GPU machine. The source notebooks are never
modified; each executed copy is written to ``--output`` even when a cell fails (the failing cell keeps
its traceback), and the exit status says whether all succeeded. ``--bundle FILE.tar.gz`` also packs every
notebook finished so far into one archive after each one, so a run cut short still leaves its results
in a single file (remote runners often return only a few files).

The widget state stored with each executed copy holds only the widgets its outputs still show (and the models
those refer to): a kernel session also leaves closed progress bars, replaced explorers and their layouts, which
would otherwise pile up in the file with every run.
"""

from __future__ import annotations

import argparse
import os
import sys
import tarfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, DeadKernelError

from ..core.language import SESSION_ENV
from .widget_state import WIDGET_STATE, shown_widgets, widget_tree


def prune_widget_state(notebook: nbformat.NotebookNode) -> int:
    """Keep only the saved widget state the outputs need (the shown models and every model they refer to, e.g. a
    box's children, a layout, an Output widget's nested views); drop the rest. Returns how many models went."""
    saved = notebook.metadata.get("widgets", {}).get(WIDGET_STATE)
    if not saved:
        return 0
    state = saved.get("state", {})
    keep = widget_tree(state, shown_widgets(notebook))
    dropped = len(state) - len(keep)
    if keep:
        saved["state"] = {model: value for model, value in state.items() if model in keep}
    else:  # no widget is shown: no state to store
        del notebook.metadata["widgets"][WIDGET_STATE]
        if not notebook.metadata["widgets"]:
            del notebook.metadata["widgets"]
    return dropped


def execute(source: Path, output: Path, timeout: int = 1800) -> tuple[bool, float]:
    """Run ``source`` with its own folder as working directory; write the result to ``output``."""
    notebook = nbformat.read(source, as_version=4)
    started = time.perf_counter()
    ok = True
    try:
        # store_widget_state: the state of every widget model of the session goes into the notebook's metadata
        # ("widgets", application/vnd.jupyter.widget-state+json), so a reopened lesson draws its widgets; what no
        # output shows is pruned below.
        # env: the kernel learns the notebook's path the way Jupyter Server tells it ($JPY_SESSION_NAME), so a
        # notebook in exercises-ja/ runs with Japanese widgets and check messages (core.language)
        NotebookClient(notebook, timeout=timeout, kernel_name="python3", store_widget_state=True,
                       resources={"metadata": {"path": str(source.resolve().parent)}}).execute(
            env={**os.environ, SESSION_ENV: str(source.resolve())})
    # keep what ran, with the failure, and go on; after a dead kernel nbclient's own clean-up can fail too (an
    # AssertionError was seen when a kernel died on a busy machine): that is this notebook's failure, not the run's
    except (CellExecutionError, DeadKernelError, TimeoutError, AssertionError, RuntimeError) as error:
        ok = False
        print(f"{source.name}: a cell failed:\n{str(error)[-2000:]}", file=sys.stderr)
    prune_widget_state(notebook)
    output.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, output)
    return ok, time.perf_counter() - started


def bundle(paths: list[Path], archive: Path) -> None:
    """Write ``paths`` into a gzipped tar (replacing it), atomically, so a reader never sees half a file."""
    partial = archive.with_name(archive.name + ".partial")
    with tarfile.open(partial, "w:gz") as tar:
        for path in paths:
            tar.add(path, arcname=path.name)
    partial.replace(archive)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m attention_course.tools.execute", description=__doc__)
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--output", type=Path, required=True, help="folder for the executed copies")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell")
    parser.add_argument("--bundle", type=Path, help="also pack the executed notebooks into this .tar.gz as they finish")
    args = parser.parse_args(argv)
    failures, done = 0, []
    for source in args.notebooks:
        target = args.output / source.name
        if target.resolve() == source.resolve():
            parser.error(f"--output would overwrite {source}: choose another folder")
        ok, seconds = execute(source, target, args.timeout)
        failures += not ok
        done.append(target)
        if args.bundle:
            bundle(done, args.bundle)
        print(f"{'ok  ' if ok else 'FAIL'} {source.name}: {seconds:.0f} s", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
