"""Shared fixtures. Tests that need servers start them themselves (see their modules)."""

from __future__ import annotations

import os

import pytest

# A real AWS account is used only when asked for explicitly.
RUN_AWS = os.environ.get("PLATFORM_TEST_AWS") == "1"


def pytest_collection_modifyitems(config, items):
    skip_aws = pytest.mark.skip(reason="real AWS: set PLATFORM_TEST_AWS=1 to run")
    for item in items:
        if "aws" in item.keywords and not RUN_AWS:
            item.add_marker(skip_aws)
