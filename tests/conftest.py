"""Shared pytest setup: Hypothesis profiles and single-threaded torch.

Profiles (select with the environment variable HYPOTHESIS_PROFILE, default ``ci``, or with
pytest's ``--hypothesis-profile NAME``):

* ``ci``: derandomized, 20 examples per test, no deadline, no example database (reproducible);
* ``dev``: 60 random examples per test;
* ``thorough``: 500 random examples per test (long runs).
"""
from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, max_examples=20, deadline=None, database=None)
settings.register_profile("dev", max_examples=60, deadline=None)
settings.register_profile("thorough", max_examples=500, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

try:
    import torch
except ImportError:  # pragma: no cover - torch is a dependency, but the reference path needs none
    torch = None
if torch is not None:
    torch.set_num_threads(1)
