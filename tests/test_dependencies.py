"""Dependencies that are kept: the packages wildpy runs on are maintained ones."""

from __future__ import annotations

import re
from importlib import metadata

import passlib


def _required() -> set[str]:
    names = set()
    for requirement in metadata.requires("wildpy") or []:
        if "extra ==" not in requirement:
            names.add(re.split(r"[\s<>=!~;\[(]", requirement, maxsplit=1)[0].lower())
    return names


def test_passlib_is_libpass() -> None:
    """passlib 1.7.4 (2020) verified WildDuck's imported hashes; libpass, its maintained fork
    with the same import name, does now, and nothing else provides the `passlib` module."""
    assert "libpass" in _required()
    assert "passlib" not in _required()
    assert metadata.packages_distributions()["passlib"] == ["libpass"]
    major, minor = (int(part) for part in passlib.__version__.split(".")[:2])
    assert (major, minor) >= (1, 9)
