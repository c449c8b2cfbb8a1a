"""The EKS REST API of the local AWS: moto's, completed and put in simulated time.

Served here: the add-on API, DescribeAddonVersions, DescribeClusterVersions and add-on
updates (moto has none of them). Passed to moto and adjusted: clusters and node groups get
their simulated status (and a cluster its endpoint and CA only once ACTIVE, as on EKS),
CreateCluster gets EKS's default Kubernetes version and rejects versions EKS does not
offer, node groups are only created on ACTIVE clusters, and missing clusters answer 404
where moto would fail with a 500. Everything else reaches moto unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from werkzeug.test import run_wsgi_app
from werkzeug.wrappers import Response

from sandbox.aws import access_entries, eks_catalog
from sandbox.aws.eks_model import EksModel
from sandbox.aws.eks_updates import Update
from sandbox.aws.errors import AwsError, error_response
from sandbox.aws.moto_app import WsgiApp
from sandbox.aws.operations import Operation, replace_body, request_body
from sandbox.aws.placeholder_ca import is_pem_data, placeholder_ca_data
from sandbox.cluster import endpoint_path

OPERATION_KEY = "sandbox.aws.operation"


class Call:
    """One EKS request: its operation, path labels, query and JSON body."""

    def __init__(self, environ: dict[str, Any]):
        self.environ = environ
        self.operation: Operation = environ[OPERATION_KEY]
        self.region = self.operation.region
        self.labels = self.operation.uri_params
        self.query = parse_qs(environ.get("QUERY_STRING") or "")
        body = request_body(environ)
        try:
            self.body: dict[str, Any] = json.loads(body) if body.strip() else {}
        except ValueError as error:
            raise AwsError(400, "BadRequestException", "The request body is not JSON") from error

    @property
    def cluster(self) -> str:
        return self.labels["name"]

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def args(self, name: str) -> list[str]:
        return self.query.get(name, [])


CLUSTER_UPDATE_TYPES = {
    "resourcesVpcConfig": "EndpointAccessUpdate",
    "logging": "LoggingUpdate",
    "accessConfig": "AccessConfigUpdate",
}
ENDPOINT_PARAMS = {
    "endpointPublicAccess": "EndpointPublicAccess",
    "endpointPrivateAccess": "EndpointPrivateAccess",
    "publicAccessCidrs": "PublicAccessCidrs",
}
NODEGROUP_UPDATE_PARAMS = {
    "scalingConfig": "ScalingConfig",
    "labels": "LabelsToAdd",
    "taints": "TaintsToAdd",
}


def endpoint_access(config: dict[str, Any]) -> dict[str, Any]:
    """A cluster's VPC config as EKS keeps it: public access open to 0.0.0.0/0 unless a
    list says otherwise, private access off unless asked for."""
    config = dict(config)
    config.setdefault("endpointPublicAccess", True)
    config.setdefault("endpointPrivateAccess", False)
    if not config.get("publicAccessCidrs"):
        config["publicAccessCidrs"] = ["0.0.0.0/0"]
    return config


class EksApi:
    def __init__(self, model: EksModel, moto_app: WsgiApp):
        self.model = model
        self.moto_app = moto_app
        self.kube_url: str | None = None  # the endpoint DescribeCluster reports
        self.kube_ca_data: str | None = None  # its CA (base64 PEM); default: a placeholder
        self._handlers: dict[str, Callable[[Call], Response]] = {
            "CreateCluster": self._create_cluster,
            "DescribeCluster": self._describe_cluster,
            "DeleteCluster": self._delete_cluster,
            "CreateNodegroup": self._create_nodegroup,
            "DescribeNodegroup": self._describe_nodegroup,
            "DeleteNodegroup": self._delete_nodegroup,
            "UpdateNodegroupVersion": self._update_nodegroup_version,
            "UpdateNodegroupConfig": self._update_nodegroup_config,
            "UpdateClusterConfig": self._update_cluster_config,
            "ListNodegroups": self._list_in_cluster,
            "ListFargateProfiles": self._list_in_cluster,
            "CreateAddon": self._create_addon,
            "DescribeAddon": self._describe_addon,
            "ListAddons": self._list_addons,
            "UpdateAddon": self._update_addon,
            "DeleteAddon": self._delete_addon,
            "DescribeUpdate": self._describe_update,
            "DescribeAddonVersions": self._describe_addon_versions,
            "DescribeClusterVersions": self._describe_cluster_versions,
            **{name: self._access_entries for name in access_entries.OPERATIONS},
        }

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        operation: Operation = environ[OPERATION_KEY]
        self.model.saw_region(operation.region)
        handler = self._handlers.get(operation.name)
        if handler is None:
            return self.moto_app(environ, start_response)
        try:
            response = handler(Call(environ))
        except AwsError as error:
            response = error_response("rest-json", "eks", error)
        return response(environ, start_response)

    # ------------------------------------------------------------ moto passthrough

    def _forward(self, call: Call) -> tuple[int, list[tuple[str, str]], bytes]:
        chunks, status, headers = run_wsgi_app(self.moto_app, call.environ, buffered=True)
        body = b"".join(chunks)
        kept = [(k, v) for k, v in headers.to_wsgi_list() if k.lower() != "content-length"]
        return int(status.split()[0]), kept, body

    def _forward_adjusted(self, call: Call, adjust: Callable[[dict[str, Any]], None]) -> Response:
        """Passes a call to moto and lets ``adjust`` edit a successful JSON answer."""
        status, headers, body = self._forward(call)
        if status == 200:
            payload = json.loads(body)
            adjust(payload)
            body = json.dumps(payload).encode()
        return Response(body, status, headers)

    def _presented(self, cluster: dict[str, Any], status: str, region: str) -> None:
        cluster["status"] = status
        cluster["accessConfig"] = self.model.access.access_config(region, cluster["name"])
        if status in ("CREATING", "FAILED"):
            # EKS gives a cluster its endpoint and CA only once it is ACTIVE.
            cluster.pop("endpoint", None)
            cluster["certificateAuthority"] = {}
            return
        if self.kube_url:
            cluster["endpoint"] = self.kube_url + endpoint_path(region, cluster["name"])
        authority = cluster.setdefault("certificateAuthority", {})
        if self.kube_ca_data:
            authority["data"] = self.kube_ca_data
        elif not is_pem_data(authority.get("data") or ""):
            authority["data"] = placeholder_ca_data()

    def _simulated(self, call: Call, cluster: dict[str, Any]) -> str:
        moto_status = cluster.get("status", "ACTIVE")
        return self.model.cluster_status(call.region, cluster["name"], moto_status)

    # ----------------------------------------------------------------- clusters

    def _create_cluster(self, call: Call) -> Response:
        version = call.body.get("version") or eks_catalog.DEFAULT_CLUSTER_VERSION
        if eks_catalog.cluster_version(version) is None:
            raise AwsError(
                400,
                "InvalidParameterException",
                f"unsupported Kubernetes version {version}",
                clusterName=call.body.get("name"),
            )
        access_entries.mode_of(call.body.get("accessConfig") or {})
        vpc = endpoint_access(call.body.get("resourcesVpcConfig") or {})
        body = {**call.body, "version": version, "resourcesVpcConfig": vpc}
        replace_body(call.environ, json.dumps(body).encode())

        def adjust(payload: dict[str, Any]) -> None:
            cluster = payload["cluster"]
            self.model.cluster_created(
                call.region, cluster["name"], call.body.get("bootstrapSelfManagedAddons", True)
            )
            self.model.access.cluster_created(
                call.region,
                cluster["name"],
                call.body.get("accessConfig") or {},
                access_entries.caller(call.environ, call.region),
            )
            self._presented(cluster, self._simulated(call, cluster), call.region)

        return self._forward_adjusted(call, adjust)

    def _access_entries(self, call: Call) -> Response:
        self.model.existing_cluster(call.region, call.cluster)
        return json_response(
            self.model.access.handle(call.operation.name, call.region, call.labels, call.body)
        )

    def _describe_cluster(self, call: Call) -> Response:
        def adjust(payload: dict[str, Any]) -> None:
            cluster = payload["cluster"]
            self._presented(cluster, self._simulated(call, cluster), call.region)

        return self._forward_adjusted(call, adjust)

    def _delete_cluster(self, call: Call) -> Response:
        def adjust(payload: dict[str, Any]) -> None:
            self.model.cluster_deleted(call.region, call.cluster)
            self.model.access.cluster_deleted(call.region, call.cluster)
            self._presented(payload["cluster"], "DELETING", call.region)

        return self._forward_adjusted(call, adjust)

    # -------------------------------------------------------------- node groups

    def _create_nodegroup(self, call: Call) -> Response:
        cluster = self.model.active_cluster(call.region, call.cluster)
        if not call.body.get("version"):
            body = {**call.body, "version": cluster["version"]}
            replace_body(call.environ, json.dumps(body).encode())

        def adjust(payload: dict[str, Any]) -> None:
            group = payload["nodegroup"]
            self.model.nodegroup_created(call.region, call.cluster, group["nodegroupName"])
            group["status"] = self.model.nodegroup_status(
                call.region, call.cluster, group["nodegroupName"], group.get("status", "ACTIVE")
            )

        return self._forward_adjusted(call, adjust)

    def _describe_nodegroup(self, call: Call) -> Response:
        def adjust(payload: dict[str, Any]) -> None:
            group = payload["nodegroup"]
            name = group["nodegroupName"]
            group["status"] = self.model.nodegroup_status(
                call.region, call.cluster, name, group.get("status", "ACTIVE")
            )
            issues = self.model.nodegroup_health(call.region, call.cluster, name)
            if issues:
                group["health"] = {"issues": issues}
            template = self.model.nodegroup_template(call.region, call.cluster, name)
            if template:
                group["launchTemplate"] = {**group.get("launchTemplate", {}), **template}

        return self._forward_adjusted(call, adjust)

    def _update_nodegroup_version(self, call: Call) -> Response:
        name = call.labels["nodegroupName"]
        self.model.active_cluster(call.region, call.cluster)
        group = next(
            (
                g
                for g in self.model.moto.nodegroups(call.region, call.cluster)
                if g["nodegroupName"] == name
            ),
            None,
        )
        if group is None:
            raise AwsError(
                404,
                "ResourceNotFoundException",
                f"No node group found for name: {name}.",
                clusterName=call.cluster,
                nodegroupName=name,
            )
        template = call.body.get("launchTemplate") or {}
        current = group.get("launchTemplate") or {}
        if template and template.get("id", current.get("id")) != current.get("id"):
            raise AwsError(
                400,
                "InvalidParameterException",
                "A node group's launch template id cannot change; give a version of its own.",
                clusterName=call.cluster,
                nodegroupName=name,
            )
        version = str(template.get("version", ""))
        update = self.model.begin_update(
            call.region,
            call.cluster,
            name,
            "VersionUpdate",
            [{"type": "LaunchTemplateVersion", "value": version}],
            "nodegroup",
        )
        self.model.nodegroup_version_updated(call.region, call.cluster, name, {"version": version})
        return json_response({"update": update.to_api(self.model.latency, started=True)})

    def _update_nodegroup_config(self, call: Call) -> Response:
        name = call.labels["nodegroupName"]
        self.model.active_cluster(call.region, call.cluster)
        params = [
            {"type": kind, "value": json.dumps(call.body[key], sort_keys=True)}
            for key, kind in NODEGROUP_UPDATE_PARAMS.items()
            if key in call.body
        ]
        update = self.model.begin_update(
            call.region, call.cluster, name, "ConfigUpdate", params, "nodegroup_update"
        )
        return self._forward_as_update(call, update)

    def _update_cluster_config(self, call: Call) -> Response:
        """One kind of change per call, as EKS takes it: endpoint access (merged into the
        cluster's VPC config, publicAccessCidrs defaulting to 0.0.0.0/0 as on EKS) or
        logging."""
        cluster = self.model.active_cluster(call.region, call.cluster)
        kinds = [key for key in CLUSTER_UPDATE_TYPES if call.body.get(key)]
        if len(kinds) != 1:
            raise AwsError(
                400,
                "InvalidParameterException",
                "Only one type of update can be allowed.",
                clusterName=call.cluster,
            )
        (key,) = kinds
        change = call.body[key]
        if key == "accessConfig":
            mode = access_entries.mode_of(change)
            self.model.access.change_mode(call.region, call.cluster, mode)
            update = self.model.begin_update(
                call.region,
                call.cluster,
                None,
                CLUSTER_UPDATE_TYPES[key],
                [{"type": "AuthenticationMode", "value": mode}],
                "cluster_update",
            )
            # moto keeps no access config: the sandbox's is the one DescribeCluster shows
            return json_response({"update": update.to_api(self.model.latency, started=True)})
        if key == "resourcesVpcConfig":
            current = cluster.get("resourcesVpcConfig") or {}
            merged = endpoint_access({**current, **change})
            replace_body(call.environ, json.dumps({**call.body, key: merged}).encode())
            params = [
                {"type": name, "value": json.dumps(merged[field])}
                for field, name in ENDPOINT_PARAMS.items()
                if field in change
            ]
        else:
            params = [{"type": "ClusterLogging", "value": json.dumps(change, sort_keys=True)}]
        update = self.model.begin_update(
            call.region, call.cluster, None, CLUSTER_UPDATE_TYPES[key], params, "cluster_update"
        )
        return self._forward_as_update(call, update)

    def _forward_as_update(self, call: Call, update: Update) -> Response:
        """moto applies the change; the answer is the sandbox's update (moto has none)."""
        status, headers, body = self._forward(call)
        if status != 200:
            return Response(body, status, headers)
        return json_response({"update": update.to_api(self.model.latency, started=True)})

    def _delete_nodegroup(self, call: Call) -> Response:
        def adjust(payload: dict[str, Any]) -> None:
            group = payload["nodegroup"]
            self.model.nodegroup_deleted(call.region, call.cluster, group["nodegroupName"])
            group["status"] = "DELETING"

        return self._forward_adjusted(call, adjust)

    def _list_in_cluster(self, call: Call) -> Response:
        self.model.existing_cluster(call.region, call.cluster)
        status, headers, body = self._forward(call)
        return Response(body, status, headers)

    # ------------------------------------------------------------------ add-ons

    def _create_addon(self, call: Call) -> Response:
        addon = self.model.create_addon(call.region, call.cluster, call.body)
        return json_response({"addon": self.model.addon_view(addon)})

    def _describe_addon(self, call: Call) -> Response:
        self.model.existing_cluster(call.region, call.cluster)
        addon = self.model.addon(call.region, call.cluster, call.labels["addonName"])
        return json_response({"addon": self.model.addon_view(addon)})

    def _list_addons(self, call: Call) -> Response:
        self.model.existing_cluster(call.region, call.cluster)
        names = [a.name for a in self.model.addons(call.region, call.cluster)]
        names, token = page(names, call)
        return json_response({"addons": names, **({"nextToken": token} if token else {})})

    def _update_addon(self, call: Call) -> Response:
        name = call.labels["addonName"]
        update = self.model.update_addon(call.region, call.cluster, name, call.body)
        return json_response({"update": update.to_api(self.model.latency, started=True)})

    def _delete_addon(self, call: Call) -> Response:
        addon = self.model.delete_addon(call.region, call.cluster, call.labels["addonName"])
        return json_response({"addon": self.model.addon_view(addon)})

    def _describe_update(self, call: Call) -> Response:
        addon_name = call.arg("addonName")
        self.model.existing_cluster(call.region, call.cluster)
        if not addon_name:
            subject = (call.region, call.cluster, call.arg("nodegroupName") or "")
            found = self.model.updates.find(subject, call.labels["updateId"])
            if found is None:
                raise AwsError(
                    404,
                    "ResourceNotFoundException",
                    f"No update found for ID: {call.labels['updateId']}",
                    clusterName=call.cluster,
                )
            return json_response({"update": found.to_api(self.model.latency)})
        addon = self.model.addon(call.region, call.cluster, addon_name)
        update = addon.updates.get(call.labels["updateId"])
        if update is None:
            raise AwsError(
                404,
                "ResourceNotFoundException",
                f"No update found for ID: {call.labels['updateId']}",
                clusterName=call.cluster,
                addonName=addon_name,
            )
        return json_response({"update": update.to_api(self.model.latency)})

    # ---------------------------------------------------------------- catalogue

    def _describe_addon_versions(self, call: Call) -> Response:
        k8s = call.arg("kubernetesVersion")
        name = call.arg("addonName")
        types, publishers, owners = call.args("types"), call.args("publishers"), call.args("owners")
        found = []
        for kind in eks_catalog.ADDONS.values():
            if name and kind.name != name:
                continue
            if (types and kind.type not in types) or (publishers and "eks" not in publishers):
                continue
            if owners and "aws" not in owners:
                continue
            info = eks_catalog.addon_info(kind, k8s)
            if info["addonVersions"]:
                found.append(info)
        found, token = page(found, call)
        return json_response({"addons": found, **({"nextToken": token} if token else {})})

    def _describe_cluster_versions(self, call: Call) -> Response:
        cluster_type = call.arg("clusterType")
        if cluster_type and cluster_type != "eks":
            raise AwsError(
                400, "InvalidParameterException", f"clusterType {cluster_type} is not supported"
            )
        wanted = set(call.args("clusterVersions"))
        default_only = call.arg("defaultOnly") == "true"
        version_status = call.arg("versionStatus")
        legacy_status = call.arg("status")
        found = []
        for version in eks_catalog.CLUSTER_VERSIONS:
            default = version.version == eks_catalog.DEFAULT_CLUSTER_VERSION
            item = version.to_api(default)
            if (wanted and version.version not in wanted) or (default_only and not default):
                continue
            if version_status and item["versionStatus"] != version_status:
                continue
            if legacy_status and item["status"] != legacy_status:
                continue
            found.append(item)
        found, token = page(found, call)
        return json_response({"clusterVersions": found, **({"nextToken": token} if token else {})})


def page(items: list, call: Call) -> tuple[list, str | None]:
    """One page of ``items`` for maxResults/nextToken; the token is the next item's index."""
    try:
        size = int(call.arg("maxResults") or 100)
        start = int(call.arg("nextToken") or 0)
    except ValueError as error:
        raise AwsError(400, "InvalidParameterException", "invalid pagination") from error
    if not 1 <= size <= 100 or start < 0:
        raise AwsError(400, "InvalidParameterException", "maxResults must be 1-100")
    end = start + size
    return items[start:end], (str(end) if end < len(items) else None)


def json_response(payload: dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(payload), status, content_type="application/json")
