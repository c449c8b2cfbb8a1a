"""EC2 as strict as EC2 where moto is not: a gateway endpoint's routes follow its route
tables.

- ModifyVpcEndpoint adds the endpoint's prefix-list route to each added route table and
  takes it out of each removed one (moto changes only the endpoint's list).
- DeleteRouteTable drops the table from every endpoint that used it, as EC2 does (moto
  keeps it, and a later DeleteVpcEndpoints then fails on the missing table).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from moto.ec2.models import ec2_backends

from sandbox.aws.moto_app import ACCOUNT_ID, WsgiApp, forward
from sandbox.aws.operations import Operation, request_body

FOLLOWED = ("ModifyVpcEndpoint", "DeleteRouteTable")


class Ec2Rules:
    def __init__(self, moto_app: WsgiApp):
        self._moto = moto_app

    def __call__(
        self, operation: Operation, environ: dict[str, Any], start_response: Callable
    ) -> Iterable[bytes]:
        if operation.name not in FOLLOWED:
            return self._moto(environ, start_response)
        params = {k: v[0] for k, v in parse_qs(request_body(environ).decode()).items()}
        body, succeeded = forward(self._moto, environ, start_response)
        if succeeded:
            backend = ec2_backends[ACCOUNT_ID][operation.region]
            if operation.name == "ModifyVpcEndpoint":
                _follow_endpoint(backend, params)
            else:
                _forget_table(backend, params["RouteTableId"])
        return body


def _listed(params: dict[str, str], name: str) -> list[str]:
    return [v for k, v in sorted(params.items()) if k.startswith(f"{name}.")]


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


def _forget_table(backend: Any, table: str) -> None:
    for endpoint in backend.vpc_end_points.values():
        if table in (endpoint.route_table_ids or []):
            endpoint.route_table_ids.remove(table)
