"""Attention in Parallel: the shared, tested library behind the course's notebooks.

Each lesson derives a piece from scratch; the tested version lives here so that later lessons
can import it instead of copying it.

Importing the package turns the Hugging Face Hub's offline switch on (``HF_HUB_OFFLINE=1``) unless you set
it yourself, before any of its modules imports transformers: the course's model and data come from installed
packages, so nothing here ever needs the Hub. ``pretrained.load_minilm("owner/name")`` with an explicit Hub id
is the one call that goes online (set ``HF_HUB_OFFLINE=1`` yourself to forbid even that).
"""

import os as _os

from . import _moved

__version__ = "0.1.0"


def _hub_offline_by_default() -> bool:
    """Set HF_HUB_OFFLINE=1 unless the user chose a value; True if the course set it."""
    if "HF_HUB_OFFLINE" in _os.environ or "TRANSFORMERS_OFFLINE" in _os.environ:
        return False
    _os.environ["HF_HUB_OFFLINE"] = "1"
    return True


HUB_OFFLINE_SET_BY_COURSE = _hub_offline_by_default()

_moved.install()  # the old flat module paths still import, with a warning that names the new one
