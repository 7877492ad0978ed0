"""deploy/k8s/: every manifest validates against the Kubernetes API schemas (kubernetes-validate,
offline, strict: unknown fields are errors), and the manifests agree with each other, with the
image (Dockerfile), gunicorn's settings and the routes the app serves."""

from __future__ import annotations

import datetime
import math
import os
import re
import runpy
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

from tests.deploy_config import DEPLOY, ROOT, service_names

K8S = DEPLOY / "k8s"
# The oldest Kubernetes still commonly run, and the newest the validator knows.
KUBERNETES_VERSIONS = ["1.30.0", kubernetes_validate.utils.latest_version()]
# Kinds of operators and tools: no Kubernetes API schema; checked by the tests below instead.
NOT_CORE = {"postgresql.cnpg.io/v1", "kustomize.config.k8s.io/v1beta1"}


def documents() -> list[tuple[Path, dict]]:
    return [
        (path, doc)
        for path in sorted(K8S.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc is not None
    ]


def one(kind: str, name: str | None = None) -> dict:
    found = [doc for _, doc in documents() if doc["kind"] == kind and (name is None or doc["metadata"]["name"] == name)]
    assert len(found) == 1, f"{kind} {name or ''}: {len(found)} found"
    return found[0]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_manifests_validate_against_the_kubernetes_schemas(version):
    checked = set()
    for path, doc in documents():
        if doc["apiVersion"] in NOT_CORE:
            continue
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{path.name} ({doc['kind']}): {exc.message} at {'.'.join(map(str, exc.path))}")
        checked.add(doc["kind"])
    wanted = {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"}
    assert wanted | {"ConfigMap", "Secret", "Job", "CronJob", "Ingress"} <= checked


def test_the_validator_rejects_a_broken_manifest():
    broken = one("Deployment")
    broken = {**broken, "spec": {**broken["spec"], "replica": 2}}  # a typo'd field
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)


def pod_spec(workload: dict) -> dict:
    job = workload["spec"]["jobTemplate"]["spec"] if workload["kind"] == "CronJob" else workload["spec"]
    return job["template"]["spec"]


def container(workload: dict) -> dict:
    (only,) = pod_spec(workload)["containers"]
    return only


def env_of(c: dict) -> dict:
    return {e["name"]: e for e in c.get("env", [])}


def test_deployment_workers_from_the_cpu_request():
    c = container(one("Deployment", "indoor"))
    field = env_of(c)["WEB_CONCURRENCY"]["valueFrom"]["resourceFieldRef"]
    assert field == {"containerName": c["name"], "resource": "requests.cpu", "divisor": "1"}
    assert c["resources"]["requests"]["cpu"] and c["resources"]["requests"]["memory"]
    assert c["resources"]["limits"]["memory"]
    from gunicorn.util import load_class
    from gunicorn.workers.ggevent import GeventWorker

    worker_class = runpy.run_path(str(ROOT / "config" / "gunicorn.conf.py"))["worker_class"]
    assert issubclass(load_class(worker_class), GeventWorker)  # ours: gevent, with JSON errors


@pytest.fixture
def pod_app(database_url):
    """The app with the Deployment's TRUSTED_HOSTS as a pod at 10.1.2.3 gets it."""
    from indoor import create_app

    env = env_of(container(one("Deployment", "indoor")))
    assert env["POD_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    trusted = env["TRUSTED_HOSTS"]["value"].replace("$(POD_IP)", "10.1.2.3")
    app = create_app({"DATABASE_URL": database_url, "TRUSTED_HOSTS": trusted, "TESTING": True, "LOG_FORMAT": "text"})
    yield app
    app.extensions["indoor.db"].close()


def test_probes_are_routes_the_app_answers(pod_app):
    c = container(one("Deployment", "indoor"))
    liveness, readiness = c["livenessProbe"]["httpGet"], c["readinessProbe"]["httpGet"]
    assert liveness["path"] == "/api/health/" and readiness["path"] == "/api/health/ready"
    assert {liveness["port"], readiness["port"], c["startupProbe"]["httpGet"]["port"]} == {c["ports"][0]["name"]}
    client = pod_app.test_client()
    # the kubelet sends the pod's address as Host
    for path in (liveness["path"], readiness["path"]):
        response = client.get(path, base_url="http://10.1.2.3:8000")
        assert response.status_code == 200, (path, response.get_json())
    assert client.get(readiness["path"], base_url="http://10.1.2.3:8000").get_json()["database"] == "ok"
    assert client.get("/api/levels/", base_url="https://maps.example.org").status_code == 200
    assert client.get(liveness["path"], base_url="http://evil.example").status_code == 400  # in force


@pytest.mark.parametrize(
    "kind,name", [("Deployment", "indoor"), ("Job", "indoor-init-db"), ("CronJob", "indoor-backup")]
)
def test_non_root_read_only_no_escalation(kind, name):
    workload = one(kind, name)
    pod = pod_spec(workload)
    c = container(workload)
    image_uid = int(re.search(r"useradd .*--uid (\d+)", (ROOT / "Dockerfile").read_text())[1])
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == image_uid
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    # the one writable place is an emptyDir at /tmp, where the metrics directory lives
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    metrics_dir = one("ConfigMap", "indoor-config")["data"]["PROMETHEUS_MULTIPROC_DIR"]
    assert metrics_dir.startswith("/tmp/")


def test_streams_get_time_to_finish_before_the_pod_dies():
    deployment = one("Deployment", "indoor")
    pod = pod_spec(deployment)
    pre_stop = container(deployment)["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    graceful = runpy.run_path(str(ROOT / "config" / "gunicorn.conf.py"))["graceful_timeout"]
    assert pod["terminationGracePeriodSeconds"] > int(pre_stop[1]) + graceful


def test_service_hpa_pdb_ingress_point_at_the_deployment():
    deployment = one("Deployment", "indoor")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    port_names = {p["name"] for p in container(deployment)["ports"]}
    service = one("Service", "indoor")
    assert service["spec"]["selector"].items() <= labels.items()
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names
    hpa = one("HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "indoor"}
    assert hpa["spec"]["minReplicas"] >= 2
    assert one("PodDisruptionBudget")["spec"]["selector"]["matchLabels"].items() <= labels.items()
    ingress = one("Ingress")
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == service["metadata"]["name"]
    assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}


def test_ingress_lets_event_streams_through():
    annotations = one("Ingress")["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
    heartbeat = one("ConfigMap", "indoor-config")["data"].get("SSE_HEARTBEAT_S", "15")
    # a quiet stream sends a keep-alive every SSE_HEARTBEAT_S: the read timeout must outlast it
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 60 > float(heartbeat)


def test_configmap_and_secret_hold_only_settings():
    known = service_names()
    config = one("ConfigMap", "indoor-config")["data"]
    assert not set(config) - known, set(config) - known
    secret = one("Secret", "indoor-secrets")["stringData"]
    referenced = {
        e["valueFrom"]["secretKeyRef"]["key"]
        for _, doc in documents()
        if doc["kind"] in ("Deployment", "Job", "CronJob")
        for e in container(doc).get("env", [])
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert not set(secret) - known - referenced, set(secret) - known - referenced
    assert {"DATABASE_URL", "DATABASE_REPLICA_URLS"} <= set(secret)
    assert not {"DATABASE_URL", "POSTGRES_PASSWORD", "SENTRY_DSN"} & set(config)  # secrets stay in the Secret


def test_init_db_job_runs_init_db_on_the_primary_itself():
    job = one("Job", "indoor-init-db")
    c = container(job)
    assert c["command"] == ["flask", "--app", "wsgi", "indoor", "init-db"]
    assert c["image"] == container(one("Deployment", "indoor"))["image"]
    ref = env_of(c)["DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    assert ref["name"] == "indoor-secrets"
    direct = urlsplit(one("Secret", "indoor-secrets")["stringData"][ref["key"]])
    assert not direct.hostname.startswith("indoor-db-pooler")  # DDL not through the transaction pooler
    assert pod_spec(job)["restartPolicy"] == "Never"


def test_backup_cronjob_dumps_the_primary_daily_onto_its_volume():
    cronjob = one("CronJob", "indoor-backup")
    assert re.fullmatch(r"\d+ \d+ \* \* \*", cronjob["spec"]["schedule"])  # daily
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    c = container(cronjob)
    assert c["image"] == container(one("Deployment", "indoor"))["image"]
    script = c["command"][-1]
    assert script.startswith('scripts/backup.sh "/backups/') and (ROOT / "scripts" / "backup.sh").is_file()
    assert env_of(c)["DATABASE_URL"]["valueFrom"]["secretKeyRef"]["key"] == "DIRECT_DATABASE_URL"
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_spec(cronjob)["volumes"]}
    claim = volumes[mounts["/backups"]]["persistentVolumeClaim"]["claimName"]
    assert one("PersistentVolumeClaim", claim)


def test_kustomization_lists_the_running_service():
    resources = set(yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"])
    assert resources == {"configmap.yaml", "deployment.yaml", "service.yaml", "hpa.yaml", "pdb.yaml"}
    assert all((K8S / name).exists() for name in resources)


def test_cloudnativepg_poolers_are_sized_for_the_autoscaled_service():
    config = one("ConfigMap", "indoor-config")["data"]
    cpu = container(one("Deployment", "indoor"))["resources"]["requests"]["cpu"]
    workers = math.ceil(int(cpu[:-1]) / 1000 if cpu.endswith("m") else float(cpu))
    per_pod = int(config.get("DB_POOL_SIZE", "5")) * workers
    clients = per_pod * one("HorizontalPodAutoscaler")["spec"]["maxReplicas"]
    secret = one("Secret", "indoor-secrets")["stringData"]
    hosts = {
        "rw": urlsplit(secret["DATABASE_URL"]).hostname,
        "ro": urlsplit(secret["DATABASE_REPLICA_URLS"]).hostname,
    }
    for kind, host in hosts.items():
        pooler = one("Pooler", host)
        assert pooler["spec"]["type"] == kind
        assert pooler["spec"]["pgbouncer"]["poolMode"] == "transaction"
        assert int(pooler["spec"]["pgbouncer"]["parameters"]["max_client_conn"]) >= clients
        assert pooler["spec"]["cluster"]["name"] == one("Cluster")["metadata"]["name"]
    cluster = one("Cluster")
    server_side = sum(
        int(one("Pooler", h)["spec"]["pgbouncer"]["parameters"]["default_pool_size"])
        * one("Pooler", h)["spec"]["instances"]
        for h in hosts.values()
    )
    assert server_side <= int(cluster["spec"]["postgresql"]["parameters"]["max_connections"])
    extensions = " ".join(cluster["spec"]["bootstrap"]["initdb"]["postInitApplicationSQL"])
    assert "postgis" in extensions and "pgrouting" in extensions


def test_backup_cronjob_command_runs(direct_database_url, tmp_path):
    """The CronJob's shell line as the kubelet hands it to sh ($$ -> $), with /backups here: it
    writes today's dump and prunes those older than two weeks."""
    line = container(one("CronJob", "indoor-backup"))["command"][-1].replace("$$", "$")
    line = line.replace("/backups", str(tmp_path))
    old = tmp_path / "indoor-2000-01-01.dump"
    old.write_bytes(b"old")
    os.utime(old, (0, 0))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "POSTGRES_"))}
    result = subprocess.run(
        ["sh", "-c", line], cwd=ROOT, env={**env, "DATABASE_URL": direct_database_url}, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    today = tmp_path / f"indoor-{datetime.date.today():%Y-%m-%d}.dump"
    assert today.stat().st_size > 10_000
    assert not old.exists()
