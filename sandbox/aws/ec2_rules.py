"""EC2 as strict as EC2 where moto is not.

- A gateway endpoint's routes follow its route tables: ModifyVpcEndpoint adds the
  endpoint's prefix-list route to each added route table and takes it out of each removed
  one (moto changes only the endpoint's list); DeleteRouteTable drops the table from every
  endpoint that used it (moto keeps it, and a later DeleteVpcEndpoints then fails).
- What a network interface still uses cannot go (moto deletes it anyway): DeleteSubnet and
  DeleteSecurityGroup answer DependencyViolation while an interface is in the subnet or
  the group; DeleteVpc while a security group other than the default one, or an attached
  internet gateway, is left; DetachInternetGateway while an Elastic IP is mapped to an
  interface in the VPC; ReleaseAddress while the address is associated; and
  DeleteNetworkInterface while an interface is in use (a NAT gateway's, a load balancer's).
- A NAT gateway's interface is in use, and deleting the gateway deletes the interface and
  disassociates its Elastic IP (moto keeps both).
- Interfaces a deleted load balancer held go only after the latency profile's
  ``load_balancer_enis`` time (``Lingering``, swept at each EC2 or ELB call).
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from moto.ec2.models import ec2_backends

from sandbox.aws.errors import AwsError, error_response
from sandbox.aws.moto_app import ACCOUNT_ID, WsgiApp, forward
from sandbox.aws.operations import Operation, request_body
from sandbox.settings import Latency

IN_USE = "in-use"


def ec2_backend(region: str) -> Any:
    return ec2_backends[ACCOUNT_ID][region]


def params_of(environ: dict[str, Any]) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request_body(environ).decode()).items()}


def in_use(eni: Any, interface_type: str) -> None:
    """Mark an interface as a managed service's (AWS's own, attached to it)."""
    eni.status, eni.requester_managed, eni.interface_type = IN_USE, True, interface_type


class Lingering:
    """Interfaces of deleted load balancers, each with when it may go."""

    def __init__(self, latency: Callable[[], Latency]):
        self._latency = latency
        self._lock = threading.Lock()
        self._since: dict[tuple[str, str], float] = {}  # (region, eni id) -> deleted at

    def add(self, region: str, eni_ids: Iterable[str]) -> None:
        with self._lock:
            self._since.update({(region, eni): time.time() for eni in eni_ids})

    def sweep(self) -> None:
        now, latency = time.time(), self._latency()
        with self._lock:
            due = [
                k
                for k, since in self._since.items()
                if latency.done("load_balancer_enis", since, now)
            ]
            for key in due:
                del self._since[key]
        for region, eni in due:
            ec2_backend(region).enis.pop(eni, None)


def dependency(message: str) -> AwsError:
    return AwsError(400, "DependencyViolation", message)


def _interfaces(backend: Any, **wanted: str) -> list[Any]:
    return [
        e
        for e in list(backend.enis.values())
        if all(_matches(e.get_filter_value(k), v) for k, v in wanted.items())
    ]


def _matches(found: Any, value: str) -> bool:
    return value in found if isinstance(found, list) else found == value


def _subnet_in_use(backend: Any, params: dict[str, str]) -> AwsError | None:
    subnet = params["SubnetId"]
    if _interfaces(backend, **{"subnet-id": subnet}):
        return dependency(f"The subnet '{subnet}' has dependencies and cannot be deleted.")
    return None


def _group_in_use(backend: Any, params: dict[str, str]) -> AwsError | None:
    group = params.get("GroupId") or ""
    if group and _interfaces(backend, **{"group-id": group}):
        return dependency(f"resource {group} has a dependent object")
    return None


def _vpc_in_use(backend: Any, params: dict[str, str]) -> AwsError | None:
    vpc = params["VpcId"]
    groups = [g for g in backend.describe_security_groups() if g.vpc_id == vpc]
    gateways = [g for g in backend.internet_gateways.values() if g.vpc and g.vpc.id == vpc]
    if any(g.name != "default" for g in groups) or gateways:
        return dependency(f"The vpc '{vpc}' has dependencies and cannot be deleted.")
    return None


def _public_addresses_mapped(backend: Any, params: dict[str, str]) -> AwsError | None:
    vpc = params["VpcId"]
    if any(a.eni is not None and a.eni.subnet.vpc_id == vpc for a in backend.addresses):
        return dependency(
            f"Network {vpc} has some mapped public address(es). Please unmap those public "
            "address(es) before detaching the gateway."
        )
    return None


def _address_associated(backend: Any, params: dict[str, str]) -> AwsError | None:
    found = (
        backend.address_by_allocation([params["AllocationId"]]) if "AllocationId" in params else []
    )
    if any(a.eni is not None or a.instance is not None for a in found):
        return AwsError(400, "InvalidIPAddress.InUse", "Address is in use.")
    return None


def _interface_in_use(backend: Any, params: dict[str, str]) -> AwsError | None:
    eni = backend.enis.get(params["NetworkInterfaceId"])
    if eni is not None and eni.status == IN_USE:
        return AwsError(
            400,
            "InvalidNetworkInterface.InUse",
            f"Network interface '{eni.id}' is currently in use.",
        )
    return None


# Checked before moto acts: an error here leaves everything as it was.
REFUSALS: dict[str, Callable[[Any, dict[str, str]], AwsError | None]] = {
    "DeleteSubnet": _subnet_in_use,
    "DeleteSecurityGroup": _group_in_use,
    "DeleteVpc": _vpc_in_use,
    "DetachInternetGateway": _public_addresses_mapped,
    "ReleaseAddress": _address_associated,
    "DeleteNetworkInterface": _interface_in_use,
}


def _follow_endpoint(backend: Any, params: dict[str, str]) -> None:
    endpoint = backend.vpc_end_points[params["VpcEndpointId"]]
    prefix_list = endpoint.destination_prefix_list_id
    if not prefix_list:
        return
    for table in _listed(params, "AddRouteTableId"):
        backend.create_route(
            table, None, gateway_id=endpoint.id, destination_prefix_list_id=prefix_list
        )
    for table in _listed(params, "RemoveRouteTableId"):
        if table in backend.route_tables:
            backend.delete_route(table, prefix_list)


def _forget_table(backend: Any, params: dict[str, str]) -> None:
    table = params["RouteTableId"]
    for endpoint in backend.vpc_end_points.values():
        if table in (endpoint.route_table_ids or []):
            endpoint.route_table_ids.remove(table)


def _nat_created(backend: Any, _: dict[str, str]) -> None:
    for nat in backend.nat_gateways.values():
        if nat.state != "deleted" and nat._eni.status != IN_USE:
            in_use(nat._eni, "nat_gateway")


def _nat_deleted(backend: Any, params: dict[str, str]) -> None:
    nat = backend.nat_gateways.get(params["NatGatewayId"])
    if nat is None:
        return
    for address in list(backend.addresses):
        if address.eni is nat._eni:
            backend.disassociate_address(association_id=address.association_id)
    backend.enis.pop(nat._eni.id, None)


# Applied after moto succeeded, to finish what AWS does and moto does not.
FOLLOW_UPS: dict[str, Callable[[Any, dict[str, str]], None]] = {
    "ModifyVpcEndpoint": _follow_endpoint,
    "DeleteRouteTable": _forget_table,
    "CreateNatGateway": _nat_created,
    "DeleteNatGateway": _nat_deleted,
}


class SweepingRules(ABC):
    """Rules of a service whose every call first lets due interfaces go (``Lingering``)."""

    def __init__(self, moto_app: WsgiApp, lingering: Lingering):
        self._moto = moto_app
        self._lingering = lingering

    def __call__(
        self, operation: Operation, environ: dict[str, Any], start_response: Callable
    ) -> Iterable[bytes]:
        self._lingering.sweep()
        return self.handle(operation, environ, start_response)

    @abstractmethod
    def handle(
        self, operation: Operation, environ: dict[str, Any], start_response: Callable
    ) -> Iterable[bytes]:
        """The service's own rules for one call."""


class Ec2Rules(SweepingRules):
    def handle(
        self, operation: Operation, environ: dict[str, Any], start_response: Callable
    ) -> Iterable[bytes]:
        refuse, follow = REFUSALS.get(operation.name), FOLLOW_UPS.get(operation.name)
        if refuse is None and follow is None:
            return self._moto(environ, start_response)
        params, backend = params_of(environ), ec2_backend(operation.region)
        error = refuse(backend, params) if refuse else None
        if error is not None:
            return error_response(operation.protocol, operation.service, error)(
                environ, start_response
            )
        body, succeeded = forward(self._moto, environ, start_response)
        if succeeded and follow is not None:
            follow(backend, params)
        return body


def _listed(params: dict[str, str], name: str) -> list[str]:
    return [v for k, v in sorted(params.items()) if k.startswith(f"{name}.")]
