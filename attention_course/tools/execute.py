"""Execute lesson notebooks headless into an output folder: ``python -m attention_course.tools.execute NB... --output DIR``.

This is how the published outputs are produced on a GPU machine. The source notebooks are never
modified; each executed copy is written to ``--output`` even when a cell fails (the failing cell keeps
its traceback), and the exit status says whether all succeeded. ``--bundle FILE.tar.gz`` also packs every
notebook finished so far into one archive after each one, so a run cut short still leaves its results
in a single file (remote runners often return only a few files).
"""

from __future__ import annotations

import argparse
import sys
import tarfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, DeadKernelError


def execute(source: Path, output: Path, timeout: int = 1800) -> tuple[bool, float]:
    """Run ``source`` with its own folder as working directory; write the result to ``output``."""
    notebook = nbformat.read(source, as_version=4)
    started = time.perf_counter()
    ok = True
    try:
        # store_widget_state: the state of every widget model the outputs show goes into the notebook's
        # metadata ("widgets", application/vnd.jupyter.widget-state+json), so a reopened lesson draws its widgets.
        NotebookClient(notebook, timeout=timeout, kernel_name="python3", store_widget_state=True,
                       resources={"metadata": {"path": str(source.resolve().parent)}}).execute()
    except (CellExecutionError, DeadKernelError, TimeoutError) as error:  # keep what ran, with the failure, and go on
        ok = False
        print(f"{source.name}: a cell failed:\n{str(error)[-2000:]}", file=sys.stderr)
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
