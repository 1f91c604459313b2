"""Loads the alias table (``aliases.toml``) into an index from matching key to canonical stage."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from types import MappingProxyType

from fundmodel.stages.matching import MAX_STAGE_NAME_LENGTH, matching_keys
from fundmodel.stages.taxonomy import Stage


class AliasTableError(ValueError):
    """The alias data file is inconsistent; raised when it is loaded, so a bad edit fails every test."""


@dataclass(frozen=True, slots=True)
class AliasTable:
    """Every accepted spelling, indexed for lookups."""

    aliases: MappingProxyType[Stage, tuple[str, ...]]
    """Spellings as written in the data file, per stage (canonical values not included)."""
    by_key: MappingProxyType[str, Stage]
    """Matching key of every canonical value and alias -> its stage."""


def parse_alias_table(text: str) -> AliasTable:
    """Build an :class:`AliasTable` from TOML text, rejecting unknown stages and ambiguous spellings."""
    document = tomllib.loads(text)
    unknown_sections = sorted(set(document) - {stage.value for stage in Stage})
    if unknown_sections:
        raise AliasTableError(f"alias table names unknown stages: {', '.join(unknown_sections)}")

    aliases: dict[Stage, tuple[str, ...]] = {}
    by_key: dict[str, Stage] = {}
    for stage in Stage:
        section = document.get(stage.value, {})
        spellings = section.get("aliases", [])
        if not isinstance(spellings, list) or not all(isinstance(s, str) for s in spellings):
            raise AliasTableError(f"[{stage.value}] aliases must be a list of strings")
        aliases[stage] = tuple(spellings)
        for spelling in (stage.value, *spellings):
            if not spelling.strip() or len(spelling) > MAX_STAGE_NAME_LENGTH:
                raise AliasTableError(f"[{stage.value}] spelling {spelling!r} is empty or too long")
            for key in matching_keys(spelling):
                owner = by_key.setdefault(key, stage)
                if owner is not stage:
                    raise AliasTableError(
                        f"spelling {spelling!r} of {stage.value} collides with {owner.value} (key {key!r})"
                    )
    return AliasTable(aliases=MappingProxyType(aliases), by_key=MappingProxyType(by_key))


@cache
def alias_table() -> AliasTable:
    """The alias table shipped with the package (read once, on first use)."""
    text = resources.files("fundmodel.stages").joinpath("aliases.toml").read_text(encoding="utf-8")
    return parse_alias_table(text)
