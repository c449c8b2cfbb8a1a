"""The sandbox's local AWS: moto's server behind a middleware that completes it.

``server.LocalAws`` serves it on 127.0.0.1. Per request, ``middleware`` identifies the
operation (``operations``), injects faults (``errors`` has the wire formats) and hands EKS
calls to ``eks_api``, which adds what moto lacks (``addons``, ``eks_catalog``) and puts
clusters, node groups and add-ons in simulated time (``eks_model``). ``cluster_source``
exposes the result to the Kubernetes simulator.
"""

# moto reads its settings from the environment when first imported, and several modules
# here import moto's models: ``moto_app`` sets them first, whichever module is imported.
from sandbox.aws import moto_app as _moto_settings  # noqa: F401
