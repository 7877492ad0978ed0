"""The README's Deployment section against what it describes: the image's command list equals the
Dockerfile's, and every command in the section names files, compose services and profiles,
Kubernetes objects, make targets, CLI commands and routes that exist. (docker and kubectl cannot
run here; the files they are given are validated by test_deploy_compose and test_deploy_k8s.)"""

from __future__ import annotations

import json
import os
import re
import shlex

import pytest
import yaml

from indoor.ops.cli import indoor
from tests.deploy_config import DEPLOY, ROOT

README = (ROOT / "README.md").read_text()


def deployment_section() -> str:
    start = README.index("\n## Deployment\n")
    end = README.index("\n## ", start + 1)
    return README[start:end]


def sh_blocks(text: str) -> list[list[str]]:
    """The command lines of each ```sh block, without comments."""
    blocks = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        lines = [re.sub(r"\s+#\s.*$", "", line).strip() for line in block.splitlines()]
        blocks.append([line for line in lines if line and not line.startswith("#")])
    return blocks


def dockerfile_commands() -> list[str]:
    """Every RUN and the CMD of the Dockerfile, continuation lines joined, in order."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    commands = []
    for line in text.splitlines():
        if line.startswith("RUN "):
            commands.append(" ".join(line[4:].split()))
        elif line.startswith("CMD "):
            commands.append(" ".join(json.loads(line[4:])))
    return commands


def test_the_image_commands_are_the_dockerfiles():
    section = deployment_section()
    image_block = sh_blocks(section[section.index("### The image") :])[0]
    assert image_block == dockerfile_commands()


def test_the_client_stage_builds_what_the_app_stage_copies():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "COPY indoor/client/package.json indoor/client/package-lock.json ./" in dockerfile
    workdir = re.search(r"AS client\nWORKDIR (\S+)", dockerfile)[1]
    assert workdir.endswith("/indoor/client")
    assert f"COPY --from=client {workdir}/dist ./indoor/client/dist" in dockerfile
    # built assets are never committed, nor copied into the build context
    assert "indoor/client/dist/" in (ROOT / ".gitignore").read_text().splitlines()
    assert "indoor/client/dist" in (ROOT / ".dockerignore").read_text().splitlines()


COMPOSE = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
K8S_OBJECTS = {
    (doc["kind"], doc["metadata"]["name"])
    for path in (DEPLOY / "k8s").glob("*.yaml")
    for doc in yaml.safe_load_all(path.read_text())
    if doc and "metadata" in doc
}
MAKE_TARGETS = set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.M))


def check_flask(args: list[str]) -> None:
    assert args[:4] == ["flask", "--app", "wsgi", "indoor"], args
    assert args[4] in indoor.commands, args


def check_compose(args: list[str]) -> None:
    assert args[:3] == ["compose", "-f", "deploy/docker-compose.yml"], args
    services = COMPOSE["services"]
    rest = args[3:]
    profiles = {rest[i + 1] for i, a in enumerate(rest) if a == "--profile"}
    assert profiles <= {p for s in services.values() for p in s.get("profiles", [])}, profiles
    rest = [a for i, a in enumerate(rest) if a != "--profile" and (i == 0 or rest[i - 1] != "--profile")]
    verb, *rest = rest
    if verb == "up":
        named = [a for a in rest if not a.startswith("-")]
        assert set(named) <= set(services), named
    elif verb == "run":
        i = 0
        while rest[i].startswith("-"):
            i += 2 if rest[i] in ("-v", "-e") else 1
        assert rest[i] in services, rest[i]
        if rest[i + 1 :] and rest[i + 1] == "flask":
            check_flask(rest[i + 1 :])
        for mount in (rest[j + 1] for j in range(i) if rest[j] == "-v"):
            assert mount.split(":")[1] in " ".join(rest[i + 1 :])  # the command reads what is mounted
    else:
        pytest.fail(f"docker compose {verb}: no check for it")


def check_kubectl(args: list[str]) -> None:
    verb = args[0]
    if verb == "apply" and args[1] == "-f":
        assert (ROOT / args[2]).is_file(), args
        assert args[2].startswith("deploy/k8s/")
    elif verb == "apply" and args[1] == "-k":
        assert (ROOT / args[2] / "kustomization.yaml").is_file()
    elif verb == "create" and args[1:3] == ["secret", "generic"]:
        assert ("Secret", args[3]) in K8S_OBJECTS
    elif verb == "wait":
        kind, name = next(a for a in args if "/" in a and not a.startswith("-")).split("/")
        assert (kind.capitalize(), name) in K8S_OBJECTS
    else:
        pytest.fail(f"kubectl {verb}: no check for it")


def check_command(words: list[str], app) -> None:
    while words and re.match(r"^[A-Z_]+=", words[0]):  # VAR=value prefixes
        words = words[1:]
    program, args = words[0], words[1:]
    if program == "cp":
        assert (ROOT / args[0]).is_file() and args[1] in (ROOT / ".gitignore").read_text().splitlines()
    elif program == "docker" and args[0] == "compose":
        check_compose(args)
    elif program == "docker" and args[0] in ("build", "push"):
        assert args[0] == "push" or (args[-1] == "." and (ROOT / "Dockerfile").is_file())
    elif program == "kubectl":
        check_kubectl(args)
    elif program == "curl":
        path = re.sub(r"^https?://[^/]+", "", args[-1])
        app.url_map.bind("localhost").match(path)  # raises NotFound for an unknown route
    elif program == "make":
        assert args[0] in MAKE_TARGETS, args
    elif program.startswith("scripts/"):
        assert (ROOT / program).is_file() and os.access(ROOT / program, os.X_OK), program
        assert len(args) == 1
    elif program == ".venv/bin/locust":
        assert args[:2] == ["-f", "locustfile.py"] and (ROOT / "locustfile.py").is_file()
    else:
        pytest.fail(f"{program}: no check for this command; add one")


def test_every_deployment_command_names_what_exists(app):
    commands = [line for block in sh_blocks(deployment_section())[1:] for line in block]
    assert len(commands) >= 15
    for line in commands:
        for part in line.split(" && "):
            check_command(shlex.split(part.replace("$(date +%F)", "DATE").replace('"$PWD', '"/here')), app)
