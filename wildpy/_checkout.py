"""Running from a source checkout without installing: map the folders as setup.cfg does.

setup.cfg's `package_dir` installs `handlers/`, `storage/` and `config/` as `wildpy.handlers`,
`wildpy.storage` and `wildpy.defaults`. An install (editable or not) maps them; a bare checkout
(`bin/wildpy`, `python -m wildpy.cli.main` from the repository root, or a strict editable install
shadowed by the checkout on `sys.path`) does not, so the first import of `wildpy` registers the
missing ones from the folders beside it.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

#: subpackage of wildpy -> its folder in the checkout (setup.cfg `package_dir`)
MAPPED = {"handlers": "handlers", "storage": "storage", "defaults": "config"}


def map_checkout_folders(package_dir: Path) -> None:
    root = package_dir.parent
    for name, folder in MAPPED.items():
        qualified = f"wildpy.{name}"
        init = root / folder / "__init__.py"
        if qualified in sys.modules or not init.exists():
            continue
        if importlib.util.find_spec(qualified) is not None:
            continue  # an install maps it already
        spec = importlib.util.spec_from_file_location(
            qualified, init, submodule_search_locations=[str(init.parent)]
        )
        if spec is None or spec.loader is None:  # pragma: no cover - a file location always loads
            continue
        module = importlib.util.module_from_spec(spec)
        sys.modules[qualified] = module
        setattr(sys.modules["wildpy"], name, module)  # as an import of a subpackage does
        spec.loader.exec_module(module)
