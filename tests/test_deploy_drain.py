"""The deployment recipes give a draining center time to finish (docs/deployment.md,
"Removing a replica"): ``GRIDWATCH_DRAIN_S`` below Kubernetes' terminationGracePeriodSeconds
and Compose's stop_grace_period, after which each kills the process mid-drain."""

from __future__ import annotations

from pathlib import Path

import yaml

from center.platform.settings import CenterSettings

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


def test_kubernetes_grace_period_outlasts_the_drain() -> None:
    docs = list(yaml.safe_load_all((DEPLOY / "k8s" / "center.yaml").read_text()))
    [config] = [d for d in docs if d["kind"] == "ConfigMap"]
    [stateful] = [d for d in docs if d["kind"] == "StatefulSet"]
    drain_s = float(config["data"]["GRIDWATCH_DRAIN_S"])
    assert drain_s == CenterSettings.model_fields["drain_s"].default
    assert drain_s + 5 <= stateful["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]


def test_compose_stop_grace_period_outlasts_the_drain() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    for name in ("center-1", "center-2"):
        service = compose["services"][name]
        drain_s = float(service["environment"]["GRIDWATCH_DRAIN_S"])
        assert service["stop_grace_period"].endswith("s")
        assert drain_s + 5 <= float(service["stop_grace_period"][:-1])
