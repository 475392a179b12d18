"""Lessons as slides (``attention-course classroom slides``): jupyterlab-slideshow reads each cell's
``slideshow.slide_type``, which ``mark_slides`` sets from the lesson's headings."""

from __future__ import annotations

import json
import re
from pathlib import Path


def slide_types(notebook: dict) -> list[str | None]:
    """One slide per section and per step: '#'/'##' headings start a slide, other prose a sub-slide; a code
    cell stays on the slide of the prose before it (None: no slide type, which jupyterlab-slideshow reads as
    "continue"), and a code cell after another code cell starts a sub-slide of its own."""
    types: list[str | None] = []
    previous = None
    for cell in notebook["cells"]:
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        kind = None
        if cell["cell_type"] == "markdown":
            kind = "slide" if re.match(r"#{1,2} ", source.lstrip()) or previous is None else "subslide"
        elif cell["cell_type"] == "code" and previous == "code":
            kind = "subslide"
        types.append(kind)
        previous = cell["cell_type"]
    return types


OWNED = {"slide", "subslide", "-"}  # slide types this tool sets; an author's fragment, notes or skip stay


def mark_slides(path: Path) -> int:
    """Set ``slideshow.slide_type`` on a notebook's cells; sources, outputs and other metadata stay as they were.

    Idempotent: a second run changes nothing and leaves the file byte for byte the same. Returns the number of
    cells whose slide type changed.
    """
    path = Path(path)
    notebook = json.loads(path.read_text(encoding="utf-8"))
    changed = 0
    for cell, kind in zip(notebook["cells"], slide_types(notebook), strict=True):
        metadata = cell.setdefault("metadata", {})
        current = metadata.get("slideshow", {}).get("slide_type")
        if kind is not None and current != kind:
            metadata.setdefault("slideshow", {})["slide_type"] = kind
            changed += 1
        elif kind is None and current in OWNED:  # a continuation: no slide type ("-" is nbconvert's, not the deck's)
            del metadata["slideshow"]["slide_type"]
            if not metadata["slideshow"]:
                del metadata["slideshow"]
            changed += 1
    if changed:  # nbformat's own layout (what Jupyter writes), so a diff shows only the new metadata
        path.write_text(json.dumps(notebook, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    return changed
