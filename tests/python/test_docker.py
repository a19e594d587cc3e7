"""docker-compose.yml and docker/: checked without a Docker engine.

`docker compose config -q` validates the file where the compose plugin is installed;
everywhere, the file is parsed and checked against the repository: the build contexts,
Dockerfiles and the files they copy exist, the commands are pgstack's console scripts
with options they accept, the services agree on the database, the start order holds.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml
from psycopg.conninfo import conninfo_to_dict

from pgstack.cli.main import build_parser as pgstack_parser
from pgstack.cli.run import build_parser as run_parser

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def project() -> dict[str, set[str]]:
    """pgstack's console scripts and extras, as installed from pyproject.toml."""
    scripts = {e.name for e in metadata.entry_points(group="console_scripts")}
    return {
        "scripts": {s for s in scripts if s.startswith("pgstack")},
        "extras": set(metadata.metadata("pgstack").get_all("Provides-Extra") or []),
    }


def compose_plugin() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    probe = subprocess.run(
        [docker, "compose", "version"], capture_output=True, text=True, timeout=30, check=False
    )
    return probe.returncode == 0


@pytest.mark.skipif(not compose_plugin(), reason="no `docker compose` plugin on this machine")
def test_docker_compose_config():
    result = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def build_of(service: dict[str, Any]) -> tuple[Path, Path]:
    build = service["build"]
    if isinstance(build, str):
        build = {"context": build}
    context = (ROOT / build["context"]).resolve()
    dockerfile = context / build.get("dockerfile", "Dockerfile")
    return context, dockerfile


def test_services_and_their_order(compose):
    services = compose["services"]
    assert set(services) == {"postgres", "migrate", "worker"}
    assert "healthcheck" in services["postgres"]
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert services["migrate"]["restart"] == "no"
    assert services["worker"]["depends_on"] == {
        "migrate": {"condition": "service_completed_successfully"}
    }
    volumes = services["postgres"]["volumes"]
    assert [v.split(":")[0] for v in volumes] == ["pgdata"]
    assert "pgdata" in compose["volumes"]


def test_builds_exist_and_copy_what_exists(compose):
    for name, service in compose["services"].items():
        context, dockerfile = build_of(service)
        assert context.is_dir(), name
        assert dockerfile.is_file(), name
        steps = dockerfile_instructions(dockerfile)
        assert steps[0][0] == "FROM", dockerfile
        for word, args in steps:
            if word in ("COPY", "ADD"):
                *sources, _ = shlex.split(args)
                for source in sources:
                    assert (context / source).exists(), f"{dockerfile}: COPY {source}"
        ignore = dockerfile.with_name(dockerfile.name + ".dockerignore")
        if context == ROOT:
            # The root holds .venv and caches: a Dockerfile built from it has its own
            # ignore file that lets through only what it copies.
            assert ignore.is_file()
            allowed = {
                line[1:].rstrip("/") for line in ignore.read_text().splitlines() if line[:1] == "!"
            }
            copied = {
                source.rstrip("/")
                for word, args in steps
                if word == "COPY"
                for source in shlex.split(args)[:-1]
            }
            assert copied <= allowed, copied - allowed


def test_postgres_image_has_pgtap(compose):
    _, dockerfile = build_of(compose["services"]["postgres"])
    steps = dockerfile_instructions(dockerfile)
    assert steps[0][1].startswith("postgres:18")
    assert any(word == "RUN" and "pgtap" in args for word, args in steps)


def test_commands_are_pgstack_with_valid_options(compose, project):
    parsers = {"pgstack": pgstack_parser(), "pgstack-run": run_parser()}
    assert set(parsers) == project["scripts"]
    _, dockerfile = build_of(compose["services"]["worker"])
    steps = dockerfile_instructions(dockerfile)
    default = [args for word, args in steps if word == "CMD"]
    commands = {name: s["command"] for name, s in compose["services"].items() if "command" in s}
    commands["Dockerfile CMD"] = yaml.safe_load(default[-1])
    assert commands["migrate"] == ["pgstack", "migrate"]
    for name, command in commands.items():
        program, *args = command
        assert program in parsers, name
        parsed = parsers[program].parse_args(args)  # a bad option would exit
        if program == "pgstack-run":
            for target in parsed.targets:
                assert (ROOT / target).is_file(), f"{name}: {target}"
            assert parsed.metrics_port == 9108
    # The extras the image installs exist, and include the metrics the worker serves.
    installs = [args for word, args in steps if word == "RUN" and "pip install" in args]
    extras = set(re.findall(r"\.\[([\w,]+)\]", " ".join(installs))[0].split(","))
    assert "metrics" in extras
    assert extras <= project["extras"]


def test_services_agree_on_the_database(compose):
    services = compose["services"]
    env = services["postgres"]["environment"]
    for name in ("migrate", "worker"):
        url = services[name]["environment"]["DATABASE_URL"]
        params = conninfo_to_dict(url)
        assert params["host"] == "postgres", name
        assert params["user"] == env["POSTGRES_USER"]
        assert params["password"] == env["POSTGRES_PASSWORD"]
        assert params["dbname"] == env["POSTGRES_DB"]
        assert params.get("port", "5432") == "5432"


def test_worker_publishes_its_metrics_port(compose):
    worker = compose["services"]["worker"]
    published = [p.rsplit(":", 1)[-1] for p in worker["ports"]]
    assert published == ["9108"]
    assert worker["stop_grace_period"]
    _, dockerfile = build_of(worker)
    assert ("EXPOSE", "9108") in dockerfile_instructions(dockerfile)


def test_readme_shows_compose_and_says_it_is_not_exercised():
    readme = (ROOT / "README.md").read_text()
    assert "docker compose up" in readme
    assert "not exercised" in readme
