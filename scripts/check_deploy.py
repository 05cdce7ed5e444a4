"""The checks of deploy/ that no schema makes, for scripts/check-deploy.sh.

    check_deploy.py consistency          the files agree with each other and with the server
    check_deploy.py configmap-toml OUT   write the Kubernetes ConfigMap's keymint.toml to OUT
    check_deploy.py config-needs FILE    what `keymint server --check-config FILE` must be given

A schema accepts a Service whose selector matches no pod, a Job reading a Secret key nobody
creates, or a grace period shorter than keymint's shutdown; these checks do not. Run with the
.venv's Python (PyYAML comes with kubernetes-validate; tomllib is in Python 3.11).
"""

import fnmatch
import re
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "kubernetes"
# Manifests that kustomization.yaml leaves out on purpose (its header says why).
NOT_IN_KUSTOMIZATION = {"secrets.example.yaml", "init-job.yaml"}
# keymint's SIGTERM budget: background work 20 s, then closing the pool 10 s, after the drain.
MIN_GRACE_SECS = 40
# The path each probe asks (docs/load-balancers.md).
PROBE_PATHS = {
    "startupProbe": "/v1/sys/live",
    "livenessProbe": "/v1/sys/live",
    "readinessProbe": "/v1/sys/ready",
}

problems: list[str] = []


def problem(where: str, text: str) -> None:
    problems.append(f"{where}: {text}")


class UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys; kubectl and compose refuse the file."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


def load_yaml(path: Path) -> list:
    try:
        return [d for d in yaml.load_all(path.read_text(), Loader=UniqueKeyLoader) if d]
    except yaml.YAMLError as e:
        problem(str(path.relative_to(ROOT)), f"invalid YAML: {e}")
        return []


def subset(small: dict, big: dict) -> bool:
    return bool(small) and all(big.get(k) == v for k, v in small.items())


def secs(text: str) -> float:
    """Compose durations (45s, 1m30s) and systemd's (45, 45s, 1min)."""
    units = {"": 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", str(text))
    if not parts or any(u not in units for _, u in parts):
        raise ValueError(f"unreadable duration {text!r}")
    return sum(float(n) * units[u] for n, u in parts)


def configmap_toml() -> tuple[dict, str]:
    for doc in load_yaml(K8S / "configmap.yaml"):
        if doc.get("kind") == "ConfigMap":
            return doc, doc.get("data", {}).get("keymint.toml", "")
    problem("deploy/kubernetes/configmap.yaml", "no ConfigMap with a keymint.toml key")
    return {}, ""


def check_pod(where: str, pod: dict, secrets: dict, configmaps: dict, tls: bool) -> None:
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for c in pod.get("containers", []):
        for e in c.get("env", []):
            ref = e.get("valueFrom", {}).get("secretKeyRef")
            if ref and ref.get("key") not in secrets.get(ref.get("name"), set()):
                problem(where, f"env {e['name']} reads {ref.get('name')}/{ref.get('key')}, which secrets.example.yaml does not define")
        mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
        for path, name in mounts.items():
            if name not in volumes:
                problem(where, f"volumeMount {path} names volume {name!r}, which the pod does not have")
        args = c.get("args", [])
        if "--config" in args[:-1]:
            config = args[args.index("--config") + 1]
            directory, _, file = config.rpartition("/")
            vol = volumes.get(mounts.get(directory, ""), {})
            paths = set()
            for src in vol.get("projected", {}).get("sources", []):
                for kind, names in (("configMap", configmaps), ("secret", secrets)):
                    if kind in src:
                        ref = src[kind]
                        for item in ref.get("items", []):
                            if item["key"] not in names.get(ref["name"], set()):
                                problem(where, f"volume {mounts.get(directory)!r} projects {kind} {ref['name']}/{item['key']}, which does not exist")
                            paths.add(item["path"])
            if file not in paths:
                problem(where, f"--config {config} is not a file of the volume mounted at {directory}")
            if tls and not {"tls/tls.crt", "tls/tls.key"} <= paths:
                problem(where, "the config names TLS files under /etc/keymint/tls that the volume does not project")
        ports = {p.get("name") for p in c.get("ports", [])}
        # Liveness must not depend on the database (a restart cures no outage); readiness must.
        for kind, path in PROBE_PATHS.items():
            get = c.get(kind, {}).get("httpGet")
            if not get:
                continue
            if get.get("path", "").split("?")[0] != path:
                problem(where, f"{kind} should ask {path}, not {get.get('path')}")
            if isinstance(get.get("port"), str) and get["port"] not in ports:
                problem(where, f"{kind} port {get['port']!r} is not a named container port")
            if (get.get("scheme", "HTTP") == "HTTPS") != tls:
                problem(where, f"{kind} scheme {get.get('scheme', 'HTTP')} does not match the config's listener (TLS {'on' if tls else 'off'})")


def check_kubernetes() -> None:
    docs = {}
    for path in sorted(K8S.glob("*.yaml")):
        docs[path.name] = load_yaml(path)
    kustomization = (docs.pop("kustomization.yaml", None) or [{}])[0]
    listed = kustomization.get("resources", [])
    for name in listed:
        if name not in docs:
            problem("deploy/kubernetes/kustomization.yaml", f"resource {name} does not exist")
    for name in sorted(set(docs) - set(listed) - NOT_IN_KUSTOMIZATION):
        problem("deploy/kubernetes/kustomization.yaml", f"{name} is neither listed nor known to be left out")
    unknown = set(kustomization) - {"apiVersion", "kind", "resources", "images"}
    if unknown:
        problem("deploy/kubernetes/kustomization.yaml", f"keys this check does not know: {sorted(unknown)}")

    by_kind: dict[str, list] = {}
    for name, items in docs.items():
        for d in items:
            by_kind.setdefault(d.get("kind"), []).append((name, d))
    secrets = {
        d["metadata"]["name"]: set(d.get("stringData", {})) | set(d.get("data", {}))
        for _, d in by_kind.get("Secret", [])
    }
    configmaps = {d["metadata"]["name"]: set(d.get("data", {})) for _, d in by_kind.get("ConfigMap", [])}
    _, toml_text = configmap_toml()
    try:
        listener = tomllib.loads(toml_text).get("listener", {})
    except tomllib.TOMLDecodeError:
        listener = {}  # keymint's --check-config reports it
    tls = listener.get("tls_disable") is not True

    deployments = by_kind.get("Deployment", [])
    if len(deployments) != 1:
        problem("deploy/kubernetes", f"expected one Deployment, found {len(deployments)}")
        return
    dname, deployment = deployments[0]
    where = f"deploy/kubernetes/{dname}"
    spec = deployment["spec"]
    pod_labels = spec["template"]["metadata"].get("labels", {})
    pod = spec["template"]["spec"]
    if not subset(spec["selector"].get("matchLabels", {}), pod_labels):
        problem(where, "the selector does not match the pod template's labels")
    if spec.get("replicas", 1) < 2:
        problem(where, "fewer than 2 replicas: a rollout or a node drain interrupts service")
    if pod.get("terminationGracePeriodSeconds", 30) < MIN_GRACE_SECS:
        problem(where, f"terminationGracePeriodSeconds below {MIN_GRACE_SECS}, keymint's shutdown budget")
    for t in pod.get("topologySpreadConstraints", []):
        if not subset(t.get("labelSelector", {}).get("matchLabels", {}), pod_labels):
            problem(where, f"topologySpreadConstraint on {t.get('topologyKey')} selects no keymint pod")
    check_pod(where, pod, secrets, configmaps, tls)
    images = {c["image"] for c in pod["containers"]}
    for entry in kustomization.get("images", []):
        if entry.get("name") not in images:
            problem("deploy/kubernetes/kustomization.yaml", f"images: {entry.get('name')!r} is no container image of the Deployment")

    for kind in ("Service", "PodDisruptionBudget"):
        for name, d in by_kind.get(kind, []):
            sel = d["spec"].get("selector", {})
            sel = sel.get("matchLabels", {}) if kind == "PodDisruptionBudget" else sel
            if not subset(sel, pod_labels):
                problem(f"deploy/kubernetes/{name}", f"{kind} {d['metadata']['name']} selects no keymint server pod")
    for name, d in by_kind.get("Job", []):
        job_pod = d["spec"]["template"]["spec"]
        check_pod(f"deploy/kubernetes/{name}", job_pod, secrets, configmaps, tls)
        mine, theirs = job_pod["containers"][0], pod["containers"][0]
        for key in ("env", "volumeMounts"):
            if mine.get(key) != theirs.get(key):
                problem(f"deploy/kubernetes/{name}", f"{key} differs from the Deployment's: init must see the servers' config, seal key and database")
        if job_pod.get("volumes") != pod.get("volumes"):
            problem(f"deploy/kubernetes/{name}", "volumes differ from the Deployment's")


def check_compose() -> None:
    path = DEPLOY / "compose.yaml"
    docs = load_yaml(path)
    if not docs:
        return
    services = docs[0].get("services", {})
    ignored = [
        line.strip()
        for line in (DEPLOY / "compose" / ".gitignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for name, svc in services.items():
        where = f"deploy/compose.yaml: service {name}"
        for dep in svc.get("depends_on", {}):
            if dep not in services:
                problems.append(f"{where}: depends_on {dep}, which is not a service")
        env_files = svc.get("env_file", [])
        for env_file in [env_files] if isinstance(env_files, str) else env_files:
            rel = env_file if isinstance(env_file, str) else env_file.get("path", "")
            # The operator creates these; they must never be committable.
            if not any(fnmatch.fnmatch(Path(rel).name, pat) for pat in ignored) or not rel.startswith("compose/"):
                problems.append(f"{where}: env_file {rel} is not under compose/ or not git-ignored there")
        for port in svc.get("ports", []):
            if not str(port).startswith("127.0.0.1:"):
                problems.append(f"{where}: port {port} is published beyond 127.0.0.1")
        for volume in svc.get("volumes", []):
            source = str(volume).split(":")[0]
            if source.startswith(".") and not (DEPLOY / source).exists():
                problems.append(f"{where}: bind-mount source {source} does not exist")
    keymint = services.get("keymint", {})
    if secs(keymint.get("stop_grace_period", "10s")) < MIN_GRACE_SECS:
        problems.append(f"deploy/compose.yaml: keymint stop_grace_period below {MIN_GRACE_SECS}s, keymint's shutdown budget")
    config = keymint.get("command", [])[-1:] or ["?"]
    if not any(str(v).endswith(":" + config[0] + ":ro") for v in keymint.get("volumes", [])):
        problems.append(f"deploy/compose.yaml: keymint's --config {config[0]} is not mounted read-only")


def check_systemd() -> None:
    unit = (DEPLOY / "systemd" / "keymint.service").read_text()
    values: dict[str, list[str]] = {}
    for line in unit.splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";")):
            key, _, value = line.partition("=")
            values.setdefault(key.strip(), []).append(value.strip())
    where = "deploy/systemd/keymint.service"
    stop = values.get("TimeoutStopSec", ["90"])[-1]
    if secs(stop) < MIN_GRACE_SECS:
        problem(where, f"TimeoutStopSec={stop} is below keymint's shutdown budget ({MIN_GRACE_SECS}s)")
    start = " ".join(values.get("ExecStart", []))
    pre = " ".join(values.get("ExecStartPre", []))
    config = re.search(r"--config\s+(\S+)", start)
    checked = re.search(r"--check-config\s+(\S+)", pre)
    if not config or not checked or config.group(1) != checked.group(1):
        problem(where, "ExecStartPre must run --check-config on the file ExecStart's --config names")


def check_dockerfile() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    channel = tomllib.loads((ROOT / "rust-toolchain.toml").read_text())["toolchain"]["channel"]
    arg = re.search(r"^ARG RUST_VERSION=(\S+)", dockerfile, re.M)
    if not arg or arg.group(1) != channel:
        problem("deploy/Dockerfile", f"ARG RUST_VERSION must be rust-toolchain.toml's channel {channel}")


def config_needs(path: str) -> None:
    """One word per line for the shell: seal_file, seal_env NAME, tls, no_storage_url."""
    try:
        config = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return  # keymint's own check says what is wrong
    seal, listener, storage = (
        config.get(name) if isinstance(config.get(name), dict) else {}
        for name in ("seal", "listener", "storage")
    )
    if "key_file" in seal:
        print("seal_file")
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(seal.get("key_env", ""))):
        print(f"seal_env {seal['key_env']}")
    if "tls_cert_file" in listener or "tls_key_file" in listener:
        print("tls")
    if "url" not in storage:
        print("no_storage_url")


def main() -> int:
    match sys.argv[1:]:
        case ["consistency"]:
            check_kubernetes()
            check_compose()
            check_systemd()
            check_dockerfile()
            for p in problems:
                print(f"    {p}", file=sys.stderr)
            return 1 if problems else 0
        case ["configmap-toml", out]:
            _, text = configmap_toml()
            Path(out).write_text(text)
            return 1 if problems else 0
        case ["config-needs", path]:
            config_needs(path)
            return 0
    print(__doc__, file=sys.stderr)
    return 64


if __name__ == "__main__":
    sys.exit(main())
