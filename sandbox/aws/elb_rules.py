"""Load balancers hold network interfaces, as on AWS (moto creates none).

A load balancer created in subnets gets an interface in each, in its security groups,
in use and described ``ELB <type>/<name>/<id>`` (``ELB <name>`` for a classic one), as AWS
describes them. Deleting the load balancer leaves them for the latency profile's
``load_balancer_enis`` time: until then they keep the subnets and groups from being deleted
(``ec2_rules``), which is what makes a teardown wait for them on AWS.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from moto.elb.models import elb_backends
from moto.elbv2.models import elbv2_backends

from sandbox.aws.ec2_rules import SweepingRules, ec2_backend, in_use, params_of
from sandbox.aws.moto_app import ACCOUNT_ID, forward
from sandbox.aws.operations import Operation

ELBV2_VERSION = "2015-12-01"


def _balancer(region: str, params: dict[str, str]) -> tuple[str, list[str], list[str]] | None:
    """The description its interfaces get, its subnet ids and its security groups."""
    if params.get("Version") == ELBV2_VERSION:
        arn = params.get("LoadBalancerArn")
        for found in elbv2_backends[ACCOUNT_ID][region].load_balancers.values():
            if found.arn == arn or (arn is None and found.name == params.get("Name")):
                # moto's ARNs say "app" whatever the type
                kind = "net" if found.type == "network" else "app"
                described = f"ELB {kind}/{found.name}/{found.arn.rsplit('/', 1)[1]}"
                subnets = [getattr(s, "id", s) for s in found.subnets]
                return described, subnets, list(found.security_groups or [])
        return None
    name = params.get("LoadBalancerName", "")
    found = elb_backends[ACCOUNT_ID][region].load_balancers.get(name)
    if found is None:
        return None
    return f"ELB {name}", list(found.subnets), list(found.security_groups or [])


def _interface_type(description: str) -> str:
    return "network_load_balancer" if description.startswith("ELB net/") else "interface"


class ElbRules(SweepingRules):
    def handle(
        self, operation: Operation, environ: dict[str, Any], start_response: Callable
    ) -> Iterable[bytes]:
        if operation.name not in ("CreateLoadBalancer", "DeleteLoadBalancer"):
            return self._moto(environ, start_response)
        params = params_of(environ)
        before = _balancer(operation.region, params)
        body, succeeded = forward(self._moto, environ, start_response)
        if succeeded and operation.name == "CreateLoadBalancer":
            self._attach(operation.region, _balancer(operation.region, params))
        elif succeeded and before is not None:
            self._release(operation.region, before[0])
        return body

    def _attach(self, region: str, balancer: tuple[str, list[str], list[str]] | None) -> None:
        if balancer is None:
            return
        description, subnets, groups = balancer
        backend = ec2_backend(region)
        for subnet in subnets:
            eni = backend.create_network_interface(
                subnet, None, group_ids=groups or None, description=description
            )
            in_use(eni, _interface_type(description))

    def _release(self, region: str, description: str) -> None:
        held = [e.id for e in ec2_backend(region).enis.values() if e.description == description]
        self._lingering.add(region, held)
