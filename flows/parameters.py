"""The parameters users give a run, typed and described once for every flow: the Prefect UI
renders them as a form (a text field, a multi-select of workflows, a number) and a
deployment validates them against this schema before the run starts.

They are pydantic ``Field`` defaults because Prefect's parameter schema takes descriptions
from those (or from docstrings), not from ``Annotated`` metadata.
"""

from __future__ import annotations

from pydantic import Field

from blueprint.spec import Workflow

ENVIRONMENT = Field(
    "sandbox",
    description="Environment: its overlay in config/environments/ and the name of the "
    "platform-target block holding its access (sandbox, production, ...)",
    pattern=r"^[a-z0-9][a-z0-9-]*$",
)
TIME_SCALE = Field(
    None,
    gt=0,
    description="Wall seconds per guide minute for polls and budgets; empty: the target's "
    "own (60 on AWS). Only a sandbox runs faster than real time.",
)
SPEC_FILE = Field(
    None, description="A YAML file merged over the environment's spec, on the worker's disk"
)
WORKFLOW_SUBSET = Field(None, description="Workflows to run; empty: all seven")

__all__ = ["ENVIRONMENT", "SPEC_FILE", "TIME_SCALE", "WORKFLOW_SUBSET", "Workflow"]
