"""Load balancers the cluster's controllers created for Services of type LoadBalancer.

They carry the cluster's tags, not the platform's, yet they sit in the platform's subnets
and block deleting the VPC: the most common reason a teardown fails. The in-tree cloud
provider tags classic ELBs and NLBs ``kubernetes.io/cluster/<cluster>``; the AWS Load
Balancer Controller tags what it creates ``elbv2.k8s.aws/cluster: <cluster>``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tasks.aws.clients import AwsClients
from tasks.aws.errors import AwsError, aws_call
from tasks.aws.identity import tag_dict

CLUSTER_TAG_PREFIX = "kubernetes.io/cluster/"
CONTROLLER_CLUSTER_TAG = "elbv2.k8s.aws/cluster"
# Which Service a load balancer serves, as each controller tags it.
SERVICE_TAGS = ("kubernetes.io/service-name", "service.k8s.aws/stack")
TAGS_PER_CALL = 20  # DescribeTags takes at most 20 names or ARNs
NOT_FOUND = ("LoadBalancerNotFound", "AccessPointNotFound")


@dataclass(frozen=True)
class LoadBalancer:
    api: str  # "elbv2" (application/network) or "elb" (classic)
    id: str  # the ARN, or a classic load balancer's name
    name: str
    service: str  # "<namespace>/<name>" of the Service, when tagged

    def describe(self) -> str:
        served = f" (Service {self.service})" if self.service else ""
        return f"load balancer {self.name}{served}"


def of_cluster(tags: dict[str, str], cluster: str) -> bool:
    return f"{CLUSTER_TAG_PREFIX}{cluster}" in tags or tags.get(CONTROLLER_CLUSTER_TAG) == cluster


def _chunks(items: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(items), TAGS_PER_CALL):
        yield items[start : start + TAGS_PER_CALL]


def _found(api: str, ident: str, name: str, tags: dict[str, str]) -> LoadBalancer:
    service = next((tags[t] for t in SERVICE_TAGS if tags.get(t)), "")
    return LoadBalancer(api, ident, name, service)


def _elbv2_of_cluster(elbv2: Any, arns: list[str], cluster: str) -> Iterator[tuple[str, dict]]:
    """Each of ``arns`` tagged for ``cluster``, with its tags."""
    for batch in _chunks(arns):
        with aws_call("elbv2:DescribeTags"):
            described: list[dict[str, Any]] = elbv2.describe_tags(ResourceArns=batch)[
                "TagDescriptions"
            ]
        for item in described:
            tags = tag_dict(item.get("Tags"))
            if of_cluster(tags, cluster):
                yield item["ResourceArn"], tags


def _elbv2_names(elbv2: Any, listing: str, kind: str) -> dict[str, str]:
    """ARN -> name of every ``kind`` (LoadBalancer, TargetGroup), ``listing`` page by page."""
    with aws_call(f"elbv2:Describe{kind}s"):
        return {
            item[f"{kind}Arn"]: item[f"{kind}Name"]
            for page in elbv2.get_paginator(listing).paginate()
            for item in page[f"{kind}s"]
        }


def cluster_load_balancers(aws: AwsClients, cluster: str) -> list[LoadBalancer]:
    """Every application, network and classic load balancer tagged for ``cluster``."""
    found: list[LoadBalancer] = []
    elbv2 = aws("elbv2")
    names = _elbv2_names(elbv2, "describe_load_balancers", "LoadBalancer")
    for arn, tags in _elbv2_of_cluster(elbv2, list(names), cluster):
        found.append(_found("elbv2", arn, names[arn], tags))
    elb = aws("elb")
    with aws_call("elb:DescribeLoadBalancers"):
        classic = [
            lb["LoadBalancerName"]
            for page in elb.get_paginator("describe_load_balancers").paginate()
            for lb in page["LoadBalancerDescriptions"]
        ]
    for batch in _chunks(classic):
        with aws_call("elb:DescribeTags"):
            described = elb.describe_tags(LoadBalancerNames=batch)["TagDescriptions"]
        for item in described:
            tags = tag_dict(item.get("Tags"))
            if of_cluster(tags, cluster):
                name = item["LoadBalancerName"]
                found.append(_found("elb", name, name, tags))
    return found


def delete_load_balancer(aws: AwsClients, balancer: LoadBalancer) -> bool:
    """Delete one load balancer; False when it was already gone."""
    try:
        if balancer.api == "elbv2":
            with aws_call("elbv2:DeleteLoadBalancer"):
                aws("elbv2").delete_load_balancer(LoadBalancerArn=balancer.id)
        else:
            with aws_call("elb:DeleteLoadBalancer"):
                aws("elb").delete_load_balancer(LoadBalancerName=balancer.id)
    except AwsError as exc:
        if exc.code in NOT_FOUND:
            return False
        raise
    return True


def cluster_target_groups(aws: AwsClients, cluster: str) -> list[tuple[str, str]]:
    """``(arn, name)`` of each target group tagged for ``cluster``: the AWS Load Balancer
    Controller's, which outlive their load balancer when the controller is gone."""
    elbv2 = aws("elbv2")
    names = _elbv2_names(elbv2, "describe_target_groups", "TargetGroup")
    return [(arn, names[arn]) for arn, _ in _elbv2_of_cluster(elbv2, list(names), cluster)]


def delete_target_groups(aws: AwsClients, cluster: str) -> list[str]:
    """Delete the cluster's target groups (their load balancers are gone by now)."""
    done = []
    for arn, name in cluster_target_groups(aws, cluster):
        try:
            with aws_call("elbv2:DeleteTargetGroup"):
                aws("elbv2").delete_target_group(TargetGroupArn=arn)
        except AwsError as exc:
            if exc.code != "TargetGroupNotFound":
                raise
            continue
        done.append(f"target group {name}")
    return done
