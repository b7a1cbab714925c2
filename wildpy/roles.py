"""Roles and permissions, read from WildDuck's roles.json format (the `accesscontrol` grants).

A grant is `{role: {resource: {"<action>:<any|own>": [attributes]}}}`. An `any` grant implies the
`own` one. Attributes are `*` with `!name` exclusions; `Permission.filter` strips the excluded
top-level keys from what a caller sends or sees.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

Action = Literal["create", "read", "update", "delete"]
ACTIONS: tuple[Action, ...] = ("create", "read", "update", "delete")


class RolesError(Exception):
    """The roles file is unreadable or malformed (reported at start-up)."""


@dataclass(frozen=True)
class Permission:
    granted: bool
    denied_attributes: frozenset[str] = frozenset()

    def filter(self, document: Mapping[str, Any]) -> dict[str, Any]:
        """The document without the attributes this permission hides."""
        if not self.denied_attributes:
            return dict(document)
        return {k: v for k, v in document.items() if k not in self.denied_attributes}

    def allows_attribute(self, name: str) -> bool:
        return name not in self.denied_attributes


DENIED = Permission(False)


class Roles:
    def __init__(self, grants: Mapping[str, Mapping[str, Mapping[str, list[str]]]]) -> None:
        self._grants = grants

    @classmethod
    def load(cls, path: str = "") -> Roles:
        try:
            if path:
                text = Path(path).read_text("utf-8")
            else:
                text = resources.files("wildpy.defaults").joinpath("roles.json").read_text("utf-8")
            grants = json.loads(text)
        except (OSError, ValueError) as exc:
            raise RolesError(f"roles file {path or 'roles.json'}: {exc}") from None
        cls._check(grants)
        return cls(grants)

    @staticmethod
    def _check(grants: Any) -> None:
        if not isinstance(grants, dict):
            raise RolesError("roles file: the top level must be an object of roles")
        for role, resources_ in grants.items():
            if not isinstance(resources_, dict):
                raise RolesError(f"roles file: role {role} must map resources to grants")
            for resource, actions in resources_.items():
                if not isinstance(actions, dict):
                    raise RolesError(f"roles file: {role}.{resource} must map actions to lists")
                for key, attributes in actions.items():
                    action, _, possession = key.partition(":")
                    if action not in ACTIONS or possession not in ("any", "own"):
                        raise RolesError(f"roles file: {role}.{resource}: bad action {key!r}")
                    if not isinstance(attributes, list):
                        raise RolesError(f"roles file: {role}.{resource}.{key} must be a list")

    def exists(self, role: str) -> bool:
        return role in self._grants

    @property
    def names(self) -> list[str]:
        return sorted(self._grants)

    def user_bound(self, role: str) -> bool:
        """Whether `role` only ever acts on its own user's things (no `any` grant): a token of
        such a role is useless without the user it belongs to."""
        return not any(
            action.endswith(":any")
            for actions in self._grants.get(role, {}).values()
            for action in actions
        )

    def can(self, role: str, action: Action, resource: str, *, own: bool) -> Permission:
        """May `role` do `action` on `resource`, on its own things (own) or anybody's?"""
        grants = self._grants.get(role, {}).get(resource, {})
        attributes = grants.get(f"{action}:any")
        if attributes is None and own:
            attributes = grants.get(f"{action}:own")
        if attributes is None:
            return DENIED
        denied = frozenset(a[1:] for a in attributes if a.startswith("!"))
        if "*" not in attributes and not denied:
            return DENIED
        return Permission(True, denied)
