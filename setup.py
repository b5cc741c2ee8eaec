"""Package discovery for the folder layout of the design (see pyproject.toml).

The top-level folders `environments/`, `policies/`, `tasks/` and `sim_assets/`
are sub-packages of `omnigym` through `package-dir`; setuptools cannot find
them on its own, so we list every package under each mapped folder here.
"""
import warnings

from setuptools import find_namespace_packages, find_packages, setup

MAPPED = {
    "omnigym.environments": "environments",
    "omnigym.policies": "policies",
    "omnigym.tasks": "tasks",
    "omnigym.sim_assets": "sim_assets",
}

packages = find_packages("platform")
# Hydra's config groups (configs/algo, configs/env, ...) hold only YAML: listed
# as namespace packages, their files ship as package data of their own folder.
packages += find_namespace_packages("platform", include=["omnigym.configs.*"], exclude=["*.__pycache__"])
for prefix, folder in MAPPED.items():
    packages.append(prefix)
    packages += [f"{prefix}.{name}" for name in find_packages(folder)]

# An editable install of mapped folders goes through setuptools' import finder,
# which always adds an "Editable installation" notice (a note, not a deprecation):
# there is nothing to change for it, so it is not shown.
warnings.filterwarnings("ignore", message="Editable installation")

setup(packages=packages)
