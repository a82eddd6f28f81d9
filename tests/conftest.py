"""Shared test set-up: hypothesis profiles and the gradient checker.

HYPOTHESIS_PROFILE=ci (the default) is derandomized, so a failure in CI reproduces locally;
HYPOTHESIS_PROFILE=dev draws 25 examples per test, for quick runs while developing;
HYPOTHESIS_PROFILE=thorough draws 1000 examples from random seeds.
"""

from __future__ import annotations

import os
import sys

import pytest
from hypothesis import HealthCheck, settings

from tinygraph.testing import gradcheck as _gradcheck

# Test helpers (tests/specs.py) are imported as plain modules.
sys.path.insert(0, os.path.dirname(__file__))

_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large]
# deadline=None: finite differences on a slow machine must not turn into flaky failures.
settings.register_profile("ci", max_examples=200, derandomize=True, deadline=None,
                          print_blob=True, suppress_health_check=_QUIET)
settings.register_profile("dev", max_examples=25, derandomize=True, deadline=None,
                          print_blob=True, suppress_health_check=_QUIET)
settings.register_profile("thorough", max_examples=1000, deadline=None, print_blob=True,
                          suppress_health_check=_QUIET)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def gradcheck():
    """tinygraph.testing.gradcheck, as a fixture for tests that prefer one."""
    return _gradcheck
