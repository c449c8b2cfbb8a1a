"""The sandbox's local helm chart repository and its stand-in charts.

``standins.yaml`` describes one stand-in per upstream chart (same name and version);
``build.build_repository`` packages them with the shared ``templates/`` and writes
index.yaml; ``server.ChartRepository`` serves the folder over HTTP.
"""
