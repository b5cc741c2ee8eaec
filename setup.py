"""Package discovery for the folder layout of the design (see pyproject.toml).

The top-level folders `environments/`, `policies/`, `tasks/` and `sim_assets/`
are sub-packages of `omnigym` through `package-dir`; setuptools cannot find
them on its own, so we list every package under each mapped folder here.
"""
from setuptools import find_packages, setup

MAPPED = {
    "omnigym.environments": "environments",
    "omnigym.policies": "policies",
    "omnigym.tasks": "tasks",
    "omnigym.sim_assets": "sim_assets",
}

packages = find_packages("platform")
for prefix, folder in MAPPED.items():
    packages.append(prefix)
    packages += [f"{prefix}.{name}" for name in find_packages(folder)]

setup(packages=packages)
