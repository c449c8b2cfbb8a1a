"""Prefect tasks of the teardown: each removes one layer of what the platform owns and
returns what it deleted, empty when nothing was left (so a second teardown changes nothing).

The order is what failed destroys in this field teach. Load balancers that Services
created block deleting the VPC, and namespaces hang on finalizers once the controllers that
clear them are gone. So the cluster is emptied first: LoadBalancer Services and their cloud
load balancers, then releases (dependants first, while the controllers still run), then the
namespaces and their volumes. The buckets and the AWS foundation follow, in reverse order.
"""
