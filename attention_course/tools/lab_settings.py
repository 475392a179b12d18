"""The JupyterLab settings the course ships: ``python -m attention_course.tools.lab_settings [--check]``.

JupyterLab does not save widget state in a notebook by default, so after a learner's Run All, save and
kernel restart every widget (explorers, what-if sliders, progress bars) says "Error displaying widget: model
not found". The course switches saving on for its own JupyterLab: ``make setup`` writes ``OVERRIDES`` into
``overrides.d/attention-course.json`` of the environment's JupyterLab settings folder
(``<venv>/share/jupyter/lab/settings``, or ``$JUPYTERLAB_DIR/settings``). That folder's ``overrides.d`` files
are namespaced by package, so a learner's own ``overrides.json`` is left alone (and still wins where it
says otherwise; so do the learner's settings in JupyterLab's Settings Editor: ``problems()`` names both).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

WIDGETS_PLUGIN = "@jupyter-widgets/jupyterlab-manager:plugin"
OVERRIDES: dict[str, dict[str, object]] = {WIDGETS_PLUGIN: {"saveState": True}}
FILE_NAME = "attention-course.json"


def settings_dir() -> Path:
    """The folder this environment's JupyterLab reads its settings overrides from (its app settings folder)."""
    try:
        from jupyterlab.commands import get_app_dir

        app_dir = get_app_dir()
    except ImportError:  # no JupyterLab: where it will read them once installed in this environment
        app_dir = os.environ.get("JUPYTERLAB_DIR") or os.path.join(sys.prefix, "share", "jupyter", "lab")
    return Path(app_dir) / "settings"


def install(folder: Path | None = None) -> Path:
    """Write the course's overrides into ``folder/overrides.d`` (default: ``settings_dir()``); return the file."""
    target = (folder or settings_dir()) / "overrides.d" / FILE_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(OVERRIDES, indent=2) + "\n", encoding="utf-8")
    return target


def _read(path: Path) -> dict:
    """A settings file (JSON, or JSON5 as JupyterLab writes user settings, with comments); {} if absent."""
    if not path.is_file():
        return {}
    text = path.read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        import json5  # JupyterLab's own reader of settings files (a dependency of jupyterlab_server)

        return json5.loads(text)


def _user_settings_file() -> Path:
    """The learner's own widget settings (JupyterLab's Settings Editor writes them here)."""
    from jupyter_core.paths import jupyter_config_dir

    folder = os.environ.get("JUPYTERLAB_SETTINGS_DIR") or os.path.join(jupyter_config_dir(), "lab", "user-settings")
    plugin, _, name = WIDGETS_PLUGIN.partition(":")
    return Path(folder, plugin, f"{name}.jupyterlab-settings")


def problems(folder: Path | None = None) -> list[str]:
    """Why JupyterLab would not use the course's settings here (empty when it will), in JupyterLab's order:
    ``overrides.d/*`` then ``overrides.json`` set the defaults, the learner's own settings come last."""
    folder = folder or settings_dir()
    effective: dict[str, dict] = {}
    sources = sorted((folder / "overrides.d").glob("*.json")) + [folder / "overrides.json"]
    for path in sources:
        for plugin, values in _read(path).items():
            effective.setdefault(plugin, {}).update(values)
    found = []
    for plugin, wanted in OVERRIDES.items():
        for key, value in wanted.items():
            if effective.get(plugin, {}).get(key) != value:
                found.append(f"{plugin} {key} is not {json.dumps(value)} in {folder} (overrides.d/{FILE_NAME} missing, "
                             "or overrides.json says otherwise)")
    user = _user_settings_file()
    for key, value in OVERRIDES[WIDGETS_PLUGIN].items():
        mine = _read(user).get(key, value)
        if mine != value:
            found.append(f"your own JupyterLab settings set {key} to {json.dumps(mine)} ({user})")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m attention_course.tools.lab_settings", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only report; exit 1 if JupyterLab would not save widget state")
    args = parser.parse_args(argv)
    if not args.check:
        print(f"JupyterLab settings: {install()} (widget state is saved with each notebook)")
    found = problems()
    for problem in found:
        print(f"note: {problem}")
    return 1 if found and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
