"""Installing the AWE IPython profile, so that ``ipython --profile=awe`` works too.

The shipped files (:mod:`awe.profiles`, folder ``profile_awe``) are copied into IPython's
directory (``$IPYTHONDIR``, default ``~/.ipython``). Files the user already has are kept,
unless ``force`` is given.
"""

from __future__ import annotations

import shutil
from importlib.resources import files
from pathlib import Path

PROFILE_NAME = "awe"


def shipped_profile() -> Path:
    return Path(str(files("awe.profiles") / f"profile_{PROFILE_NAME}"))


def installed_profile() -> Path:
    from IPython.paths import get_ipython_dir

    return Path(get_ipython_dir()) / f"profile_{PROFILE_NAME}"


def shipped_files() -> list[Path]:
    source = shipped_profile()
    return sorted(
        p.relative_to(source) for p in source.rglob("*.py") if "__pycache__" not in p.parts
    )


def is_installed() -> bool:
    target = installed_profile()
    return all((target / name).exists() for name in shipped_files())


def install_profile(force: bool = False) -> list[Path]:
    """Copy the profile's files into IPython's directory; return the files written."""
    source, target = shipped_profile(), installed_profile()
    written = []
    for name in shipped_files():
        destination = target / name
        if destination.exists() and not force:
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / name, destination)
        written.append(destination)
    return written
