"""Render a kustomization: with the real kustomize (`kubectl kustomize`) when kubectl is
installed, else offline with the subset of kustomize that deploy/k8s uses.

`render_overlay` is what the tests call. The fallback exists because no kustomize binary
comes from PyPI: where kubectl is installed, `test_the_fallback_renders_what_kubectl_renders`
checks that both produce the same resources. Only these kustomization fields are
understood by the fallback, and any other field is an error (so a kustomization cannot
silently use something it would skip):

- `resources`: YAML files (several documents each) and directories holding a kustomization
- `configMapGenerator`: `files` and `literals`, `behavior` create or merge; names are kept
  as written, so `generatorOptions.disableNameSuffixHash: true` is required
- `patches`: strategic-merge patches from `path`, matched by kind and name (a `null`
  deletes a field; lists of containers, env, volumes, ports and volume mounts merge by
  their key, other lists are replaced, as Kubernetes' strategic merge does for these)
- `namespace`: set on every namespaced resource
- `images`: `newName` and `newTag` for containers whose image name matches `name`

`kubectl kustomize deploy/k8s/overlays/<name>` renders the same resources (plus kustomize's
own ordering), which is what docs/deployment.md applies.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

Resource = dict[str, Any]

KNOWN_FIELDS = {
    "apiVersion",
    "kind",
    "resources",
    "configMapGenerator",
    "generatorOptions",
    "patches",
    "namespace",
    "images",
}
CLUSTER_SCOPED = {"Namespace", "PersistentVolume", "ClusterRole", "ClusterRoleBinding"}
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
}
POD_TEMPLATE_PATHS = {
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}


class KustomizeError(ValueError):
    pass


def kubectl() -> str | None:
    return shutil.which("kubectl")


def render_with_kubectl(directory: Path) -> list[Resource]:
    found = kubectl()
    assert found is not None
    result = subprocess.run(
        [found, "kustomize", str(directory)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise KustomizeError(f"kubectl kustomize {directory}: {result.stderr.strip()}")
    return [resource for resource in yaml.safe_load_all(result.stdout) if resource]


def render_overlay(directory: Path) -> list[Resource]:
    """The resources of the kustomization: kubectl's rendering, else the fallback's."""
    return render_with_kubectl(directory) if kubectl() else render(directory)


def render(directory: Path) -> list[Resource]:
    """The resources the kustomization in `directory` produces."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(kustomization) - KNOWN_FIELDS
    if unknown:
        raise KustomizeError(f"{directory}: unsupported kustomization fields {sorted(unknown)}")

    resources: list[Resource] = []
    for entry in kustomization.get("resources", []):
        path = (directory / entry).resolve()
        if path.is_dir():
            resources.extend(render(path))
        else:
            resources.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)

    generators = kustomization.get("configMapGenerator", [])
    options = kustomization.get("generatorOptions", {})
    if generators and not options.get("disableNameSuffixHash"):
        raise KustomizeError(f"{directory}: name suffix hashes are not rendered here")
    for generator in generators:
        _generate_config_map(directory, generator, resources)

    for patch in kustomization.get("patches", []):
        if set(patch) != {"path"}:
            raise KustomizeError(f"{directory}: only `path` patches are rendered: {patch}")
        for document in yaml.safe_load_all((directory / patch["path"]).read_text()):
            target = _find(resources, document["kind"], document["metadata"]["name"])
            merged = strategic_merge(target, document)
            resources[resources.index(target)] = merged

    namespace = kustomization.get("namespace")
    if namespace:
        for resource in resources:
            if resource["kind"] not in CLUSTER_SCOPED:
                resource.setdefault("metadata", {})["namespace"] = namespace

    for image in kustomization.get("images", []):
        _set_image(resources, image)
    return resources


def _find(resources: list[Resource], kind: str, name: str) -> Resource:
    found = [r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name]
    if len(found) != 1:
        raise KustomizeError(f"{len(found)} resources {kind}/{name}, expected one")
    return found[0]


def _generate_config_map(
    directory: Path, generator: dict[str, Any], resources: list[Resource]
) -> None:
    unknown = set(generator) - {"name", "files", "literals", "behavior"}
    if unknown:
        raise KustomizeError(f"{directory}: unsupported configMapGenerator fields {unknown}")
    data: dict[str, str] = {}
    for file in generator.get("files", []):
        key, _, source = file.rpartition("=") if "=" in file else (Path(file).name, "", file)
        data[key] = (directory / source).read_text()
    for literal in generator.get("literals", []):
        key, _, value = literal.partition("=")
        data[key] = value
    behavior = generator.get("behavior", "create")
    if behavior == "create":
        resources.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": generator["name"]},
                "data": data,
            }
        )
    elif behavior == "merge":
        _find(resources, "ConfigMap", generator["name"])["data"].update(data)
    else:
        raise KustomizeError(f"{directory}: configMapGenerator behavior {behavior!r}")


def strategic_merge(target: Any, patch: Any, field: str = "") -> Any:
    """Kubernetes' strategic merge for the fields deploy/k8s patches."""
    if isinstance(target, dict) and isinstance(patch, dict):
        merged = copy.deepcopy(target)
        for key, value in patch.items():
            if value is None:
                merged.pop(key, None)
            elif key in merged:
                merged[key] = strategic_merge(merged[key], value, key)
            else:
                merged[key] = copy.deepcopy(value)
        return merged
    if isinstance(target, list) and isinstance(patch, list) and field in MERGE_KEYS:
        key = MERGE_KEYS[field]
        merged_list = copy.deepcopy(target)
        for item in patch:
            same = [i for i, old in enumerate(merged_list) if old.get(key) == item.get(key)]
            if same:
                merged_list[same[0]] = strategic_merge(merged_list[same[0]], item, field)
            else:
                merged_list.append(copy.deepcopy(item))
        return merged_list
    return copy.deepcopy(patch)


def pod_spec(resource: Resource) -> dict[str, Any] | None:
    path = POD_TEMPLATE_PATHS.get(resource["kind"])
    if path is None:
        return None
    node: dict[str, Any] = resource
    for part in path:
        node = node[part]
    return node


def _set_image(resources: list[Resource], image: dict[str, str]) -> None:
    for resource in resources:
        spec = pod_spec(resource)
        if spec is None:
            continue
        for container in spec.get("containers", []) + spec.get("initContainers", []):
            name, _, tag = container["image"].partition(":")
            if name != image["name"]:
                continue
            new_name = image.get("newName", name)
            new_tag = image.get("newTag", tag)
            container["image"] = f"{new_name}:{new_tag}" if new_tag else new_name


def main(argv: list[str]) -> int:
    """`python -m tests.deploy.kustomize deploy/k8s/overlays/prod`: the rendered YAML."""
    if len(argv) != 1:
        print("usage: python -m tests.deploy.kustomize DIRECTORY", file=sys.stderr)
        return 2
    print(yaml.safe_dump_all(render_overlay(Path(argv[0])), sort_keys=False), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
