"""Building and running PokeWatch's images with podman, on a machine without a registry.

No base image can be pulled here, so the base is made from Debian's packages: a
`debootstrap --variant=minbase` of bookworm with python3, pip and venv, given the host's CA
bundle (pip and uv reach the package index through it) and without Debian's
EXTERNALLY-MANAGED marker, imported with `podman import`. The Bento is built with a copy of
bentofile.yaml whose `docker.base_image` is that base (the committed bentofile keeps the
official one, which CI on GitHub uses), then `bentoml containerize --backend podman`.
Podman runs with deploy/containers/containers.conf (runc, host networking, no ulimits) and
vfs storage. Every build is timed; the figures go into the test output.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
BASE_IMAGE = "localhost/pokewatch-base:bookworm"
API_IMAGE = "localhost/pokewatch:check"
PIPELINES_IMAGE = "localhost/pokewatch-pipelines:check"
REDIS_IMAGE = "localhost/pokewatch-redis:check"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
DEBIAN_MIRROR = "http://deb.debian.org/debian"


class EngineUnavailableError(RuntimeError):
    """Podman is missing or cannot start a container on this machine."""


@dataclass
class Timings:
    """Seconds each build or start took, and image sizes, for the report."""

    seconds: dict[str, float]
    sizes: dict[str, str]

    def report(self) -> str:
        parts = [f"{name} {value:.0f} s" for name, value in self.seconds.items()]
        parts += [f"{name} {size}" for name, size in self.sizes.items()]
        return "; ".join(parts)


TIMINGS = Timings({}, {})


def configure(scratch: Path) -> None:
    """Point podman at this project's settings (and vfs storage) for this process tree."""
    os.environ["CONTAINERS_CONF"] = str(REPO / "deploy" / "containers" / "containers.conf")
    if os.geteuid() == 0:
        runroot, graphroot = "/run/containers/storage", "/var/lib/containers/storage"
    else:
        runtime = os.environ.get("XDG_RUNTIME_DIR", f"/tmp/podman-run-{os.getuid()}")
        runroot = f"{runtime}/containers"
        graphroot = str(Path.home() / ".local" / "share" / "containers" / "storage")
    storage = scratch / "storage.conf"
    storage.write_text(
        f'[storage]\ndriver = "vfs"\nrunroot = "{runroot}"\ngraphroot = "{graphroot}"\n'
    )
    os.environ["CONTAINERS_STORAGE_CONF"] = str(storage)


def podman(
    *arguments: str, check: bool = True, timeout: float = 1800
) -> subprocess.CompletedProcess[str]:
    found = shutil.which("podman")
    if found is None:
        raise EngineUnavailableError("podman is not installed (apt-get install podman runc)")
    result = subprocess.run(
        [found, *arguments], capture_output=True, text=True, check=False, timeout=timeout
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"podman {' '.join(arguments)}: {result.stderr[-4000:]}")
    return result


def run(argv: Sequence[str], env: Mapping[str, str] | None = None, cwd: Path = REPO) -> str:
    result = subprocess.run(
        list(argv),
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {result.stdout[-2000:]}{result.stderr[-4000:]}")
    return result.stdout


def check_engine() -> None:
    """Raise EngineUnavailableError unless podman can run a container here."""
    podman("info", "--format", "{{.Host.OCIRuntime.Name}}")
    if not image_exists(BASE_IMAGE) and shutil.which("debootstrap") is None:
        raise EngineUnavailableError("debootstrap is not installed (apt-get install debootstrap)")


def image_exists(name: str) -> bool:
    return podman("image", "exists", name, check=False).returncode == 0


def image_size(name: str) -> str:
    return podman("image", "inspect", name, "--format", "{{.Size}}").stdout.strip()


def timed(name: str, started: float) -> None:
    TIMINGS.seconds[name] = time.monotonic() - started


def build_base_image(scratch: Path) -> None:
    """The Debian bookworm base, once per machine (kept in the image store)."""
    if image_exists(BASE_IMAGE):
        return
    started = time.monotonic()
    root = scratch / "rootfs"
    run(
        [
            "debootstrap",
            "--variant=minbase",
            "--include=python3,python3-pip,python3-venv,ca-certificates",
            "bookworm",
            str(root),
            DEBIAN_MIRROR,
        ]
    )
    if CA_BUNDLE.is_file():
        shutil.copy(CA_BUNDLE, root / "etc" / "ssl" / "certs" / "ca-certificates.crt")
    for marker in root.glob("usr/lib/python3*/EXTERNALLY-MANAGED"):
        marker.unlink()
    (root / "etc" / "pip.conf").write_text(f"[global]\ncert = {CA_BUNDLE}\n")
    shutil.rmtree(root / "var" / "lib" / "apt" / "lists", ignore_errors=True)
    archive = scratch / "rootfs.tar"
    run(["tar", "-C", str(root), "-cf", str(archive), "."])
    podman(
        "import",
        "--change",
        f"ENV SSL_CERT_FILE={CA_BUNDLE}",
        "--change",
        f"ENV PIP_CERT={CA_BUNDLE}",
        "--change",
        'CMD ["/bin/bash"]',
        str(archive),
        BASE_IMAGE,
    )
    shutil.rmtree(root, ignore_errors=True)
    archive.unlink()
    timed("base image (debootstrap + import)", started)


def build_api_image(scratch: Path, bentoml_home: Path) -> str:
    """`bentoml build` with the local base, then `bentoml containerize --backend podman`;
    returns the Bento's tag."""
    bentofile = yaml.safe_load((REPO / "bentofile.yaml").read_text())
    # The local base; the rest of the docker section (the `pokewatch` setup script) stays.
    bentofile["docker"] = {**bentofile.get("docker", {}), "base_image": BASE_IMAGE}
    local = scratch / "bentofile.yaml"
    local.write_text(yaml.safe_dump(bentofile, sort_keys=False))
    env = {"BENTOML_HOME": str(bentoml_home), "PATH": f"{BIN}:{os.environ['PATH']}"}
    version = f"check-{int(time.time())}"
    started = time.monotonic()
    run([str(BIN / "bentoml"), "build", "-f", str(local), "--version", version, "."], env)
    tag = f"pokewatch:{version}"
    run(
        [
            str(BIN / "bentoml"),
            "containerize",
            tag,
            "--backend",
            "podman",
            "-t",
            API_IMAGE,
            "--opt",
            "network=host",
        ],
        env,
    )
    timed("API image (bentoml containerize)", started)
    TIMINGS.sizes["API image"] = image_size(API_IMAGE)
    return tag


def build_image(name: str, containerfile: Path, context: Path, label: str) -> None:
    started = time.monotonic()
    podman(
        "build",
        "--network",
        "host",
        "--build-arg",
        f"BASE_IMAGE={BASE_IMAGE}",
        "-f",
        str(containerfile),
        "-t",
        name,
        str(context),
    )
    timed(label, started)
    TIMINGS.sizes[label] = image_size(name)


def wait_for(url: str, seconds: float = 120) -> float:
    """Seconds until `url` answers 200 (fails after `seconds`)."""
    import httpx

    started = time.monotonic()
    while time.monotonic() - started < seconds:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return time.monotonic() - started
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise TimeoutError(f"{url} did not answer 200 within {seconds} s")


def scratch_directory() -> Path:
    return Path(tempfile.mkdtemp(prefix="pokewatch-containers-"))


def logs(container: str) -> str:
    result = podman("logs", container, check=False)
    return (result.stdout + result.stderr)[-6000:]
