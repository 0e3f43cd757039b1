"""Import the modules named in the project's explicit extension lists.

The registry (checks), the catalog (named models), the CLI (subcommands), the `run` command
(task runners) and the claims table (row sources) each keep a tuple of module names instead of
import-time registration.  Every listed module is part of the package, so a missing one is a
bug and raises, rather than silently shrinking what `verify` or `list` report.
"""
from __future__ import annotations

import importlib
from types import ModuleType
from typing import Iterable


def import_modules(names: Iterable[str]) -> list[ModuleType]:
    return [importlib.import_module(name) for name in names]


def import_construction(module: str, not_built: str) -> ModuleType:
    """A model's construction module; ``InputError(not_built)`` when that module itself does not
    exist (a model named on the command line but not built in this tree), any other import
    failure raised as it is."""
    from constructions.errors import InputError

    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            raise InputError(not_built) from None
        raise
