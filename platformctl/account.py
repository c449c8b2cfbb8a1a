"""What a run needs from the AWS account, as ``platformctl plan`` and ``platformctl
iam-policy`` show it: the principal, the quotas (with ``--check-account``, against the
account), and the least-privilege policy the runner needs."""

from __future__ import annotations

import re
from typing import Any

from rich.console import Console
from rich.table import Table

from blueprint.errors import SpecError
from blueprint.quotas import QuotaNeed
from blueprint.spec import PlatformSpec

ACCOUNT_ID = re.compile(r"\d{12}")


def principal_source(spec: PlatformSpec) -> str:
    """Whom a run acts as, said without asking AWS."""
    from platformctl.targets import is_sandbox

    env = spec.platform.environment
    if is_sandbox(spec):
        return "the sandbox's local AWS (dummy credentials)"
    return (
        f"the AWS credentials of the platform-target block {env!r} (the default chain: "
        f"environment, profile, instance role, when none is saved); it needs the policy of "
        f"`platformctl iam-policy --env {env}`"
    )


def check(spec: PlatformSpec) -> Any:
    """``--check-account``: the account's quotas and usage against the spec (read-only)."""
    from platformctl.targets import existing_target
    from tasks.aws.account import check_account
    from tasks.aws.clients import AwsClients
    from tasks.aws.errors import AwsError

    try:
        target = existing_target(spec)
    except SpecError as exc:
        raise SpecError([f"--check-account: {p}" for p in exc.problems]) from None
    aws = AwsClients(target.aws_credentials, target.region)
    if aws.credentials() is None:
        raise SpecError(
            [
                f"--check-account: no AWS credentials for environment "
                f"{spec.platform.environment!r} (none in its platform-target block, none in "
                "the default chain)"
            ]
        )
    try:
        return check_account(spec, aws)
    except AwsError as exc:
        raise SpecError([f"--check-account: {exc}"]) from None


def account_id(spec: PlatformSpec, given: str | None) -> tuple[str, str | None]:
    """The account ID for ``iam-policy`` and, when it is a placeholder, a note saying so:
    ``--account``, else the running sandbox's or the default credential chain's (STS),
    else the placeholder."""
    from tasks.aws.permissions import ACCOUNT_PLACEHOLDER

    if given is not None:
        if not ACCOUNT_ID.fullmatch(given):
            raise SpecError([f"--account: {given!r} is not a 12-digit AWS account ID"])
        return given, None
    clients = _clients(spec)
    if clients is None:
        return ACCOUNT_PLACEHOLDER, (
            f"no AWS credentials found: {ACCOUNT_PLACEHOLDER} stands for the account "
            "(CloudFormation's Fn::Sub replaces it); --account names it"
        )
    from tasks.aws.errors import AwsError

    try:
        return clients.account_id(), None
    except AwsError as exc:
        raise SpecError(
            [f"--account: not given, and the credentials found cannot tell it: {exc}"]
        ) from None


def _clients(spec: PlatformSpec) -> Any:
    """Clients of the running sandbox, or of the default credential chain; None without
    credentials."""
    from platformctl.targets import existing_target, is_sandbox
    from tasks.aws.clients import AwsClients

    if is_sandbox(spec):
        try:
            target = existing_target(spec)
        except SpecError:  # no sandbox running
            return None
    else:
        from blocks.target import aws_target

        target = aws_target(spec.platform.environment, spec.platform.region)
    clients = AwsClients(target.aws_credentials, target.region)
    return clients if clients.credentials() is not None else None


# ----------------------------------------------------------------------------- views


def _number(value: float | None) -> str:
    return "?" if value is None else f"{value:g}"


def _table(title: str, columns: str) -> Table:
    """A table titled on the left; a column ending in ``>`` is right-justified."""
    table = Table(title=title, title_justify="left")
    for column in columns.split(", "):
        right = column.endswith(">")
        table.add_column(column.rstrip(">"), justify="right" if right else "left")
    return table


def render_needs(needs: list[QuotaNeed], spec: PlatformSpec, console: Console) -> None:
    table = _table(
        f"What the run needs from the account (region {spec.platform.region})",
        "quota, code, needed>, at most>, per, for",
    )
    for need in needs:
        q = need.quota
        table.add_row(
            q.name,
            f"{q.service}/{q.code}" if q.code else "-",
            f"{need.needed} {need.unit}",
            str(need.at_most),
            need.per,
            need.why,
        )
    console.print(table)
    console.print(f"Runs as: {principal_source(spec)}.", markup=False, soft_wrap=True)


def render_check(result: Any, console: Console) -> None:
    table = _table(
        f"Account {result.principal.account}, region {result.region}",
        "quota, code, needed>, in use>, platform's>, limit>, status",
    )
    for item in result.quotas:
        q = item.need.quota
        status = item.status
        if status == "short":
            status = f"short: {item.after_run:g} > {item.limit:g}"
        elif status == "short at max":
            status = f"OK; short at max size: {item.at_most:g} > {item.limit:g}"
        if item.note:
            status += f" ({item.note})"
        table.add_row(
            q.name,
            f"{q.service}/{q.code}" if q.code else "-",
            str(item.need.needed),
            str(item.in_use),
            str(item.ours),
            _number(item.limit),
            status,
        )
    console.print(table)
    console.print(f"Runs as: {result.principal.arn}", markup=False)
    for item in result.short:
        need = item.need
        console.print(
            f"short: {need.quota.name} ({need.quota.service}/{need.quota.code}): the run needs "
            f"{need.needed} {need.unit}, {item.in_use - item.ours} are in use by others, the "
            f"limit is {item.limit:g}; ask for an increase in the Service Quotas console",
            markup=False,
        )
