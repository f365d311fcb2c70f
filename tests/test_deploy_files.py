"""The deployment files under deploy/ (docs/deployment.md), checked as far as this machine can:
Docker, Compose, kubectl and systemd are not here, so nothing is built, started or applied.
What is checked: every YAML parses; every GRIDWATCH_* variable they set is a real setting;
every `gridwatch ...` command they run parses with the real CLI; images, ports, secrets,
volumes and generated account files agree with each other; the StatefulSet's replica-to-
account script gives each pod the account `gen-auth --center-replicas` made for it; and the
probe and health-check paths and the scaler's metric answer in a real center."""

from __future__ import annotations

import configparser
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from pydantic import BaseModel

from center.platform.settings import CenterSettings
from center.transport.mqtt_auth import CENTER_USER, center_users, gen_auth
from tests import plain_http
from tests.conftest import RunningCenter
from wire.paths import REPO

DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
#: Read from the environment outside CenterSettings (wire/paths.py; ultralytics itself).
#: A variable's name (not a ``GRIDWATCH_CLIPS__*`` family named in a comment).
_ENV_NAME = re.compile(r"\b(GRIDWATCH_[A-Z0-9_]*[A-Z0-9])\b")
OTHER_ENV = {"GRIDWATCH_DATA_DIR": REPO / "wire" / "paths.py"}


def _docs(path: Path) -> list[Any]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]


def _k8s() -> dict[tuple[str, str], dict[str, Any]]:
    found = {}
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":  # kustomize's input, not a cluster object
            continue
        for doc in _docs(path):
            found[(doc["kind"], doc["metadata"]["name"])] = doc
    return found


def _compose() -> dict[str, Any]:
    return _docs(DEPLOY / "compose.yaml")[0]


def _dockerfile(name: str) -> str:
    return (DEPLOY / name).read_text(encoding="utf-8")


def is_setting(name: str) -> bool:
    """Whether ``GRIDWATCH_A__B`` names a field of CenterSettings (``a.b``)."""
    if name in OTHER_ENV:
        return name in OTHER_ENV[name].read_text(encoding="utf-8")
    model: type[BaseModel] = CenterSettings
    parts = name.removeprefix("GRIDWATCH_").lower().split("__")
    for n, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            return False
        if n < len(parts) - 1:
            inner = field.annotation
            if not (isinstance(inner, type) and issubclass(inner, BaseModel)):
                return False
            model = inner
    return True


def test_every_yaml_parses_and_every_variable_is_a_setting() -> None:
    names: set[str] = set()
    yamls = [DEPLOY / "compose.yaml", *sorted(K8S.glob("*.yaml"))]
    assert len(yamls) >= 4
    for path in yamls:
        text = path.read_text(encoding="utf-8")
        assert _docs(path), path
        names |= set(_ENV_NAME.findall(text))
    for dockerfile in ("center.Dockerfile", "edge.Dockerfile"):
        names |= set(_ENV_NAME.findall(_dockerfile(dockerfile)))
    names |= set(_ENV_NAME.findall((DEPLOY / "systemd" / "gridwatch-edge.service").read_text()))
    names.discard("GRIDWATCH_AUTH_DIR")  # compose's own variable: the gen-auth folder
    assert {"GRIDWATCH_DB__DSN", "GRIDWATCH_MQTT__USERNAME", "GRIDWATCH_HTTP__PORT",
            "GRIDWATCH_CLIPS__DIR", "GRIDWATCH_SECRET_KEY"} <= names
    unknown = sorted(n for n in names if not is_setting(n))
    assert not unknown, f"not settings of the center: {unknown}"
    assert not is_setting("GRIDWATCH_MQTT__NO_SUCH") and not is_setting("GRIDWATCH_DB__DSN__X")


def _commands() -> list[tuple[str, list[str]]]:
    """Every `gridwatch ...` command line the deployment files run, with where it is from."""
    found: list[tuple[str, list[str]]] = []
    for name in ("center.Dockerfile", "edge.Dockerfile"):
        for cmd in re.findall(r"^CMD (\[.*\])$", _dockerfile(name), re.M):
            found.append((name, yaml.safe_load(cmd)))
    for service, spec in _compose()["services"].items():
        if "command" in spec:
            found.append((f"compose {service}", spec["command"]))
    for (kind, name), doc in _k8s().items():
        if kind != "StatefulSet":
            continue
        pod = doc["spec"]["template"]["spec"]
        for c in pod["initContainers"] + pod["containers"]:
            cmd = c["command"]
            if cmd[:2] == ["/bin/sh", "-c"]:
                cmd = shlex.split(re.search(r"exec (gridwatch .*)", c["args"][0]).group(1))
            found.append((f"{kind} {name} {c['name']}", cmd))
    unit = (DEPLOY / "systemd" / "gridwatch-edge.service").read_text(encoding="utf-8")
    for line in re.findall(r"^ExecStart(?:Pre)?=(.*)$", unit, re.M):
        found.append(("gridwatch-edge.service", shlex.split(line)))
    return found


def test_every_command_they_run_parses_with_the_real_cli(tmp_path: Path) -> None:
    from gridwatch.cli import cli

    placeholder = tmp_path / "auth"
    (placeholder / "edges").mkdir(parents=True)
    (placeholder / "edges" / "edge-sim.secret").write_text("x\n")
    commands = _commands()
    assert len(commands) >= 7
    for where, written in commands:
        argv = [a.replace("${GRIDWATCH_AUTH_DIR}", str(placeholder)) for a in written]
        program = Path(argv[0]).name
        assert program == "gridwatch", f"{where}: {argv}"
        cmd: click.Command = cli
        rest = argv[1:]
        while isinstance(cmd, click.Group):
            sub = cmd.get_command(click.Context(cmd), rest[0])
            assert sub is not None, f"{where}: no command {rest[0]!r} in {argv}"
            cmd, rest = sub, rest[1:]
        try:
            cmd.make_context(argv[-1], list(rest))
        except click.UsageError as exc:
            pytest.fail(f"{where}: {argv}: {exc}")


def test_images_users_ports_and_health_checks_agree() -> None:
    for name in ("center.Dockerfile", "edge.Dockerfile"):
        text = _dockerfile(name)
        assert re.findall(r"^FROM (\S+)", text, re.M) == ["debian:12-slim"] * 2, name
        assert re.search(r"^USER 10001:10001$", text, re.M), f"{name}: not root"
        assert "-c .ci/constraints.txt -e ." in text, f"{name}: the project's pinned install"
        assert (DEPLOY / f"{name}.dockerignore").is_file()
    center = _dockerfile("center.Dockerfile")
    assert re.search(r"^EXPOSE 8000$", center, re.M)
    assert "GRIDWATCH_HTTP__PORT=8000" in center and "GRIDWATCH_HTTP__HOST=0.0.0.0" in center
    assert "http://127.0.0.1:8000/healthz" in center.split("HEALTHCHECK", 1)[1]

    compose = _compose()
    services = compose["services"]
    assert {"postgres", "mosquitto", "migrate", "center-1", "center-2", "edge-sim"} <= set(
        services)
    for name, spec in services.items():
        if "build" in spec:
            assert (DEPLOY / Path(spec["build"]["dockerfile"]).name).is_file(), name
            assert spec["build"]["context"] == ".."
        for secret in spec.get("secrets", []):
            assert secret in compose["secrets"], f"{name}: secret {secret}"
        for volume in spec.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith(("$", ".", "/")):
                assert source in compose["volumes"], f"{name}: volume {source}"
    assert {services[n]["image"] for n in ("center-1", "center-2", "migrate")} == {
        "gridwatch-center:latest"}
    assert services["postgres"]["image"].endswith("-pg15"), "the center image's pg_dump is 15"
    mosquitto_conf = (DEPLOY / "mosquitto" / "mosquitto.conf").read_text(encoding="utf-8")
    include = re.search(r"^include_dir (\S+)$", mosquitto_conf, re.M).group(1)
    assert any(v.split(":")[1].startswith(include + "/") for v in
               services["mosquitto"]["volumes"]), "the generated drop-in lands in include_dir"

    k8s = _k8s()
    sts = k8s[("StatefulSet", "gridwatch-center")]
    (container,) = sts["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "gridwatch-center"
    kustomization = _docs(K8S / "kustomization.yaml")[0]
    assert [i["name"] for i in kustomization["images"]] == ["gridwatch-center"]
    assert set(kustomization["resources"]) == {p.name for p in K8S.glob("*.yaml")} - {
        "kustomization.yaml"}
    (port,) = container["ports"]
    assert port == {"name": "http", "containerPort": 8000}
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}, probe
    assert sts["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    pdb = k8s[("PodDisruptionBudget", "gridwatch-center")]
    assert pdb["spec"]["selector"] == sts["spec"]["selector"]
    service = k8s[("Service", "gridwatch-center")]
    assert service["spec"]["selector"] == sts["spec"]["selector"]["matchLabels"]
    secrets = {s["name"]: s["files"] for s in kustomization["secretGenerator"]}
    for ref in re.findall(r"secretKeyRef: \{name: ([\w-]+), key: (\w+)\}",
                          (K8S / "center.yaml").read_text(encoding="utf-8")):
        assert any(f.startswith(ref[1] + "=") for f in secrets[ref[0]]), ref
    scaled = k8s[("ScaledObject", "gridwatch-center")]
    assert scaled["spec"]["scaleTargetRef"]["name"] == "gridwatch-center"
    assert scaled["spec"]["maxReplicaCount"] == len(secrets["gridwatch-mqtt"]), (
        "one generated account per replica the scaler may start")


def test_the_replica_script_logs_each_pod_in_with_the_account_gen_auth_made(
        tmp_path: Path) -> None:
    files = gen_auth(["edge-a"], tmp_path / "auth", center_replicas=3)
    sts = _k8s()[("StatefulSet", "gridwatch-center")]
    (container,) = sts["spec"]["template"]["spec"]["containers"]
    shown = "$GRIDWATCH_MQTT__USERNAME $GRIDWATCH_MQTT__CLIENT_ID $GRIDWATCH_MQTT__PASSWORD_FILE"
    script = container["args"][0].replace("exec gridwatch center run", f'echo "{shown}"')
    generated = _docs(K8S / "kustomization.yaml")[0]["secretGenerator"][0]["files"]
    for ordinal, user in enumerate(center_users(CENTER_USER, 3)):
        out = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True,
                             check=True, env={"HOSTNAME": f"gridwatch-center-{ordinal}"})
        got_user, client_id, password_file = out.stdout.split()
        secret = files.center_replica_secret(ordinal + 1).name
        assert (got_user, client_id) == (user, user)
        assert password_file == f"/etc/gridwatch/mqtt/{secret}"
        assert f"secrets/{secret}" in generated
        assert files.password(user)


def test_compose_reads_the_env_files_gen_auth_writes(tmp_path: Path) -> None:
    gen_auth(["edge-sim"], tmp_path, broker_host="mosquitto", center_replicas=2)
    services = _compose()["services"]
    for name in ("center-1", "center-2"):
        (env_file,) = services[name]["env_file"]
        written = tmp_path / Path(env_file).name
        assert written.is_file(), env_file
        env = dict(line.split("=", 1) for line in written.read_text().splitlines())
        assert env["GRIDWATCH_MQTT__HOST"] == "mosquitto"
        assert all(is_setting(k) for k in env)
    assert (tmp_path / "edges" / "edge-sim.secret").is_file()
    assert (tmp_path / "mosquitto-auth.conf").is_file()


def test_the_systemd_unit_and_scripts_are_well_formed() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(DEPLOY / "systemd" / "gridwatch-edge.service", encoding="utf-8")
    assert set(unit.sections()) == {"Unit", "Service", "Install"}
    service = unit["Service"]
    assert service["User"] == "gridwatch" and service["Restart"] == "always"
    assert service["ExecStart"].startswith("/opt/gridwatch/.venv/bin/gridwatch edge run")
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    subprocess.run(["bash", "-n", str(DEPLOY / "secrets.sh")], check=True)


def test_probe_paths_and_the_scalers_metric_answer_in_a_real_center(
        center: RunningCenter) -> None:
    probe_paths = {c[p]["httpGet"]["path"]
                   for (kind, _), doc in _k8s().items() if kind == "StatefulSet"
                   for c in doc["spec"]["template"]["spec"]["containers"]
                   for p in ("readinessProbe", "livenessProbe", "startupProbe")}
    probe_paths |= set(re.findall(r"127\.0\.0\.1:8000(/\w+)", _dockerfile("center.Dockerfile")))
    assert probe_paths == {"/healthz"}
    for path in probe_paths:
        r = plain_http.get(center.url + path)  # no token: kubelet and Docker have none
        assert r.status_code == 200, (path, r.text)
        assert r.json()["status"] == "ok"
    metrics = plain_http.get(center.url + "/metrics")
    assert metrics.status_code == 200
    query = _k8s()[("ScaledObject", "gridwatch-center")]["spec"]["triggers"][0]["metadata"][
        "query"]
    names = set(re.findall(r"\b(gridwatch_\w+)", query))
    assert names == {"gridwatch_ingest_waiting_messages"}
    exposed = set(re.findall(r"^(gridwatch_\w+)", metrics.text, re.M))
    assert names <= exposed, f"{names - exposed} not in /metrics"
