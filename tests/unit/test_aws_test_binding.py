"""The real-AWS test runs only by hand, against an account: its call of the flow is checked
here, on every run, against the flow's real parameters."""

from __future__ import annotations

from pathlib import Path

from flows.foundation import foundation
from tests.aws.test_foundation_aws import ENVIRONMENT, foundation_arguments


def test_the_aws_test_calls_the_foundation_flow_with_its_real_parameters():
    arguments = foundation_arguments(Path("/tmp/ptest.yaml"))
    validated = foundation.validate_parameters(arguments)
    assert validated["environment"] == ENVIRONMENT
    assert validated["spec_file"] == "/tmp/ptest.yaml"
