"""Inputs a run needs from outside the spec (secrets in Prefect blocks), read and checked
before anything is touched, so bad input stops a run with the block's name, not halfway
through with a controller that cannot authenticate."""

from __future__ import annotations

import re
from collections.abc import Iterable

from prefect.blocks.system import Secret

from blueprint.catalogue import Component
from blueprint.errors import SpecError
from blueprint.spec import PlatformSpec, dns_token_block
from tasks.aws.clients import AwsClients
from tasks.aws.eks import describe_cluster, handed_over
from tasks.runner import handed_over_problems, in_cluster, reach_problems

TOKEN_FIELD = "ingress.external_dns.token_secret_block"
# Cloudflare API tokens: 40 letters and digits (before 2026), or a cfut_/cfat_ prefix, 40
# characters and a checksum (the scannable format).
CLOUDFLARE_TOKEN = re.compile(r"^(?:(?:cfut|cfat)_[A-Za-z0-9_-]{41,}|[A-Za-z0-9_-]{40})$")


def dns_token(spec: PlatformSpec) -> str:
    """The Cloudflare API token from its Secret block; a SpecError naming the block when
    it is missing, empty or (against a real DNS provider) not a token."""
    block = dns_token_block(spec)
    try:
        value = Secret.load(block, _sync=True).get()
    except ValueError:
        raise SpecError(
            [
                f"{TOKEN_FIELD}: no Prefect Secret block {block!r} (create it with the "
                "Cloudflare API token: prefect block create secret)"
            ]
        ) from None
    token = str(value if value is not None else "").strip()
    if not token:
        raise SpecError([f"{TOKEN_FIELD}: the Prefect Secret block {block!r} is empty"])
    if not spec.ingress.external_dns.placeholder_token_allowed and not CLOUDFLARE_TOKEN.match(
        token
    ):
        raise SpecError(
            [
                f"{TOKEN_FIELD}: the Prefect Secret block {block!r} does not hold a Cloudflare "
                "API token (40 letters and digits, or cfut_/cfat_ and 41 or more); a "
                "placeholder is accepted only where ingress.external_dns."
                "placeholder_token_allowed says the DNS provider is a stand-in"
            ]
        )
    return token


def needs_dns_token(spec: PlatformSpec, components: Iterable[Component]) -> bool:
    return spec.ingress.external_dns.provider == "cloudflare" and any(
        c.name == "external-dns" for c in components
    )


def preflight(spec: PlatformSpec, components: Iterable[Component]) -> None:
    """Every outside input the components need, checked; one SpecError with every problem."""
    problems: list[str] = reach_problems(spec)
    if needs_dns_token(spec, components):
        try:
            dns_token(spec)
        except SpecError as exc:
            problems += exc.problems
    if problems:
        raise SpecError(problems)


def check_reach(spec: PlatformSpec, aws: AwsClients) -> None:
    """Once a cluster is in its in-cluster worker's hands, a run from outside would find its
    API out of reach halfway: it stops here instead, before anything is touched."""
    if in_cluster():
        return
    problems = handed_over_problems(
        spec, handed_over(spec, describe_cluster(aws, spec.eks.cluster_name))
    )
    if problems:
        raise SpecError(problems)
