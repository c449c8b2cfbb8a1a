"""Shared test setup: each tier's marker comes from its folder; real AWS only when asked."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

TIERS = {"unit": "unit", "sandbox": "sandbox", "e2e": "e2e", "aws": "aws"}
RUN_AWS = os.environ.get("PLATFORM_TEST_AWS") == "1"


def pytest_collection_modifyitems(config, items):
    skip_aws = pytest.mark.skip(reason="real AWS: set PLATFORM_TEST_AWS=1 to run")
    root = Path(__file__).parent
    for item in items:
        tier = Path(item.fspath).relative_to(root).parts[0]
        if tier in TIERS:
            item.add_marker(getattr(pytest.mark, TIERS[tier]))
        if "aws" in item.keywords and not RUN_AWS:
            item.add_marker(skip_aws)
