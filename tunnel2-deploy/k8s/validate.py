#!/usr/bin/env python3
"""Offline checks of the Tunnel2 Kubernetes manifests in this folder; needs no cluster.

    python3 tunnel2-deploy/k8s/validate.py            # from anywhere; exit 0 = no errors
    python3 tunnel2-deploy/k8s/validate.py --no-render

Needs PyYAML (Debian: apt-get install python3-yaml). If kubectl or kustomize is on PATH, the script also renders
kustomization.yaml, and an overlay with kestrel-tls.patch.yaml, and checks the rendered objects too.

It is no substitute for a schema validator (kubeconform) or a server-side dry run. It checks what those would not
catch: labels and selectors, ports, probes, references to ConfigMaps and Secrets, $(VAR) order, the shutdown
timing, the restricted Pod Security settings, the configuration keys against the options classes in src/, and the
session directory settings (Redis with several replicas, the node secret, a node endpoint that speaks the HTTP
version NodeForwarder sends).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

try:
    import yaml
except ImportError:  # pragma: no cover
    sys.exit("PyYAML is missing: apt-get install python3-yaml (or pip install pyyaml)")

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
NAMESPACE = "tunnel2"

API_VERSIONS = {
    "Namespace": "v1", "ConfigMap": "v1", "Secret": "v1", "Service": "v1",
    "Deployment": "apps/v1", "PodDisruptionBudget": "policy/v1",
    "NetworkPolicy": "networking.k8s.io/v1", "Ingress": "networking.k8s.io/v1",
}
CLUSTER_SCOPED = {"Namespace"}
# Paths the TunnelServer serves itself (src/TunnelServer/Hosting/TunnelServerHost.cs); the client's status endpoint.
SERVER_PATHS = {"/healthz", "/readyz", "/metrics"}
CLIENT_STATUS_PATHS = {"/status", "/metrics"}
# What the server does on its own (src/TunnelServer/Hosting/TunnelServerHost.cs): the host's shutdown timeout is
# Tunnel:DrainTimeout + 5 s, at least 30 s, whatever shutdownTimeoutSeconds says.
DEFAULT_DRAIN_SECONDS = 25.0
SHUTDOWN_AFTER_DRAIN_SECONDS = 5.0
MIN_SHUTDOWN_SECONDS = 30.0
NODE_FORWARDER = "src/TunnelServer/ScaleOut/NodeForwarder.cs"

errors: list[str] = []
warnings: list[str] = []


def err(where: str, msg: str) -> None:
    errors.append(f"ERROR {where}: {msg}")


def warn(where: str, msg: str) -> None:
    warnings.append(f"warn  {where}: {msg}")


# ----------------------------------------------------------------------------------------------------- loading
def load_file(path: str) -> list[tuple[str, dict]]:
    with open(path, encoding="utf-8") as f:
        docs = [d for d in yaml.safe_load_all(f) if d is not None]
    return [(os.path.basename(path), d) for d in docs]


def manifest_files() -> list[str]:
    skip = {"kustomization.yaml", ".yamllint.yaml"}
    return sorted(os.path.join(HERE, n) for n in os.listdir(HERE)
                  if n.endswith((".yaml", ".yml")) and n not in skip and not n.endswith(".patch.yaml"))


def where_of(src: str, obj: dict) -> str:
    return f"{src} {obj.get('kind', '?')}/{(obj.get('metadata') or {}).get('name', '?')}"


# ------------------------------------------------------------------------------------------- options classes
def options_properties(path: str) -> dict[str, set[str]]:
    """Class name -> public settable property names, from a C# options file (regex; good enough for POCOs)."""
    props: dict[str, set[str]] = {}
    current = None
    try:
        text = open(path, encoding="utf-8").read()
    except OSError:
        return props
    for line in text.splitlines():
        m = re.match(r"\s*public\s+(?:sealed\s+)?class\s+(\w+)", line)
        if m:
            current = m.group(1)
            props[current] = set()
            continue
        m = re.match(r"\s*public\s+(?!const|static)[\w<>\[\]?,. ]+?\s+(\w+)\s*\{\s*get;", line)
        if m and current:
            props[current].add(m.group(1))
    return props


SERVER_OPTS = options_properties(os.path.join(REPO, "src/TunnelServer/TunnelServerOptions.cs"))
CLIENT_OPTS = options_properties(os.path.join(REPO, "src/TunnelClient/TunnelClientOptions.cs"))
SERVER_SUBSECTIONS = {"Tokens": "TunnelTokenOptions", "Tcp": "TunnelTcpOptions", "RateLimit": "TunnelRateLimitOptions",
                      "Directory": "TunnelDirectoryOptions"}


def forwarder_protocol() -> str | None:
    """The HTTP version NodeForwarder sends between nodes ("Http1" or "Http2"), read from its source."""
    try:
        text = open(os.path.join(REPO, NODE_FORWARDER), encoding="utf-8").read()
    except OSError:
        return None
    m = re.search(r"Version\s*=\s*HttpVersion\.Version(\d+)", text)
    return {"10": "Http1", "11": "Http1", "20": "Http2", "30": "Http3"}.get(m.group(1)) if m else None


FORWARDER_PROTOCOL = forwarder_protocol()


def timespan_seconds(value: str) -> float | None:
    """Seconds of a .NET TimeSpan string as the configuration binder parses it ("00:00:25", "1.00:00:00");
    None if it is not one. A bare number is days in .NET."""
    v = str(value).strip()
    if re.fullmatch(r"\d+", v):
        return int(v) * 86400.0
    m = re.fullmatch(r"(?:(\d+)\.)?(\d+):(\d+)(?::(\d+)(?:\.(\d+))?)?", v)
    if not m:
        return None
    days, h, mi, sec, frac = m.groups()
    return (int(days or 0) * 86400 + int(h) * 3600 + int(mi) * 60 + int(sec or 0)
            + (float("0." + frac) if frac else 0.0))


def check_config_key(where: str, key: str, side: str) -> None:
    """Tunnel__X__Y environment names against the options classes (catches typos that .NET would ignore silently)."""
    if not key.startswith("Tunnel__"):
        return
    parts = key.split("__")[1:]
    if side == "server":
        root = SERVER_OPTS.get("TunnelServerOptions")
        if not root:
            return
        if parts[0] not in root:
            err(where, f"{key}: Tunnel:{parts[0]} is not a property of TunnelServerOptions")
            return
        sub = SERVER_SUBSECTIONS.get(parts[0])
        rest = parts[2:] if parts[0] == "Tokens" else parts[1:]  # Tokens__<index>__Name
        if parts[0] == "Tokens" and (len(parts) < 2 or not parts[1].isdigit()):
            err(where, f"{key}: Tunnel:Tokens needs an index (Tunnel__Tokens__0__Sha256)")
        if sub and rest and rest[0] not in SERVER_OPTS.get(sub, set()):
            err(where, f"{key}: {rest[0]} is not a property of {sub}")
    else:
        root = CLIENT_OPTS.get("TunnelClientOptions")
        if root and parts[0] not in root:
            err(where, f"{key}: Tunnel:{parts[0]} is not a property of TunnelClientOptions")


# ---------------------------------------------------------------------------------------------- quantities
def cpu(q) -> float:
    s = str(q)
    return float(s[:-1]) / 1000 if s.endswith("m") else float(s)


def mem(q) -> float:
    s = str(q)
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "K": 1e3, "M": 1e6, "G": 1e9}
    for u, f in units.items():
        if s.endswith(u):
            return float(s[: -len(u)]) * f
    return float(s)


# ------------------------------------------------------------------------------------------- unknown fields
# The fields of the API types these manifests use (Kubernetes 1.34). A misspelled field is dropped silently by a
# client-side apply with validation off, and the schema check (schema-check.mjs) does not reject unknown fields.
def _f(s: str) -> frozenset:
    return frozenset(s.split())


META = _f("name generateName namespace labels annotations ownerReferences finalizers uid resourceVersion generation "
          "creationTimestamp deletionTimestamp deletionGracePeriodSeconds managedFields selfLink")
FIELDS = {
    "top": _f("apiVersion kind metadata spec status data binaryData stringData type immutable"),
    "DeploymentSpec": _f("replicas selector template strategy minReadySeconds revisionHistoryLimit paused "
                         "progressDeadlineSeconds"),
    "PodSpec": _f("volumes initContainers containers ephemeralContainers restartPolicy terminationGracePeriodSeconds "
                  "activeDeadlineSeconds dnsPolicy nodeSelector serviceAccountName serviceAccount "
                  "automountServiceAccountToken nodeName hostNetwork hostPID hostIPC shareProcessNamespace "
                  "securityContext imagePullSecrets hostname subdomain affinity schedulerName tolerations hostAliases "
                  "priorityClassName priority dnsConfig readinessGates runtimeClassName enableServiceLinks "
                  "preemptionPolicy overhead topologySpreadConstraints setHostnameAsFQDN os hostUsers "
                  "schedulingGates resourceClaims resources"),
    "Container": _f("name image command args workingDir ports envFrom env resources resizePolicy restartPolicy "
                    "restartPolicyRules volumeMounts volumeDevices livenessProbe readinessProbe startupProbe lifecycle "
                    "terminationMessagePath terminationMessagePolicy imagePullPolicy securityContext stdin stdinOnce tty"),
    "Probe": _f("exec httpGet tcpSocket grpc initialDelaySeconds timeoutSeconds periodSeconds successThreshold "
                "failureThreshold terminationGracePeriodSeconds"),
    "HTTPGetAction": _f("path port host scheme httpHeaders"),
    "Lifecycle": _f("postStart preStop stopSignal"),
    "LifecycleHandler": _f("exec httpGet tcpSocket sleep"),
    "SecurityContext": _f("capabilities privileged seLinuxOptions windowsOptions runAsUser runAsGroup runAsNonRoot "
                          "readOnlyRootFilesystem allowPrivilegeEscalation procMount seccompProfile appArmorProfile"),
    "PodSecurityContext": _f("seLinuxOptions windowsOptions runAsUser runAsGroup runAsNonRoot supplementalGroups "
                             "supplementalGroupsPolicy fsGroup sysctls fsGroupChangePolicy seccompProfile "
                             "appArmorProfile seLinuxChangePolicy"),
    "EnvVar": _f("name value valueFrom"),
    "EnvFromSource": _f("prefix configMapRef secretRef"),
    "ContainerPort": _f("name containerPort protocol hostPort hostIP"),
    "VolumeMount": _f("name mountPath readOnly recursiveReadOnly subPath subPathExpr mountPropagation"),
    "Resources": _f("requests limits claims"),
    "ServiceSpec": _f("ports selector clusterIP clusterIPs type externalIPs sessionAffinity loadBalancerIP "
                      "loadBalancerSourceRanges externalName externalTrafficPolicy healthCheckNodePort "
                      "publishNotReadyAddresses sessionAffinityConfig ipFamilies ipFamilyPolicy "
                      "allocateLoadBalancerNodePorts loadBalancerClass internalTrafficPolicy trafficDistribution"),
    "ServicePort": _f("name protocol appProtocol port targetPort nodePort"),
    "PDBSpec": _f("minAvailable selector maxUnavailable unhealthyPodEvictionPolicy"),
}


def check_fields(w: str, obj, kind: str, path: str) -> None:
    if not isinstance(obj, dict):
        return
    allowed = META if kind == "ObjectMeta" else FIELDS[kind]
    for key in obj:
        if key not in allowed:
            err(w, f"{path}.{key}: unknown field of {kind}")


def check_unknown_fields(w: str, o: dict) -> None:
    check_fields(w, o, "top", o.get("kind", "?"))
    check_fields(w, o.get("metadata"), "ObjectMeta", "metadata")
    spec = o.get("spec") or {}
    if o.get("kind") == "Deployment":
        check_fields(w, spec, "DeploymentSpec", "spec")
        tmpl = spec.get("template") or {}
        check_fields(w, tmpl.get("metadata"), "ObjectMeta", "spec.template.metadata")
        pod = tmpl.get("spec") or {}
        check_fields(w, pod, "PodSpec", "pod")
        check_fields(w, pod.get("securityContext"), "PodSecurityContext", "pod.securityContext")
        for c in (pod.get("containers") or []) + (pod.get("initContainers") or []):
            p = f"container {c.get('name')}"
            check_fields(w, c, "Container", p)
            check_fields(w, c.get("securityContext"), "SecurityContext", f"{p}.securityContext")
            check_fields(w, c.get("resources"), "Resources", f"{p}.resources")
            for e in c.get("env") or []:
                check_fields(w, e, "EnvVar", f"{p}.env")
            for e in c.get("envFrom") or []:
                check_fields(w, e, "EnvFromSource", f"{p}.envFrom")
            for port in c.get("ports") or []:
                check_fields(w, port, "ContainerPort", f"{p}.ports")
            for vm in c.get("volumeMounts") or []:
                check_fields(w, vm, "VolumeMount", f"{p}.volumeMounts")
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                check_fields(w, c.get(probe), "Probe", f"{p}.{probe}")
                check_fields(w, (c.get(probe) or {}).get("httpGet"), "HTTPGetAction", f"{p}.{probe}.httpGet")
            lc = c.get("lifecycle")
            check_fields(w, lc, "Lifecycle", f"{p}.lifecycle")
            for h in ("postStart", "preStop"):
                check_fields(w, (lc or {}).get(h), "LifecycleHandler", f"{p}.lifecycle.{h}")
    elif o.get("kind") == "Service":
        check_fields(w, spec, "ServiceSpec", "spec")
        for port in spec.get("ports") or []:
            check_fields(w, port, "ServicePort", "spec.ports")
    elif o.get("kind") == "PodDisruptionBudget":
        check_fields(w, spec, "PDBSpec", "spec")


# ----------------------------------------------------------------------------------------------------- checks
def check_common(src: str, obj: dict) -> None:
    w = where_of(src, obj)
    kind = obj.get("kind")
    for field in ("apiVersion", "kind", "metadata"):
        if field not in obj:
            err(w, f"missing {field}")
    meta = obj.get("metadata") or {}
    if not meta.get("name"):
        err(w, "missing metadata.name")
    elif not re.fullmatch(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?", meta["name"]):
        err(w, f"metadata.name {meta['name']!r} is not a DNS-1123 name")
    if kind in API_VERSIONS and obj.get("apiVersion") != API_VERSIONS[kind]:
        err(w, f"apiVersion {obj.get('apiVersion')} (expected {API_VERSIONS[kind]})")
    if kind not in API_VERSIONS:
        warn(w, f"kind {kind} is not checked by this script")
    if kind not in CLUSTER_SCOPED and meta.get("namespace") != NAMESPACE:
        err(w, f"metadata.namespace should be {NAMESPACE}")
    if "app.kubernetes.io/part-of" not in (meta.get("labels") or {}):
        warn(w, "no app.kubernetes.io/part-of label")


def selector_matches(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check_pod_security(w: str, pod: dict, containers: list[dict]) -> None:
    psc = pod.get("securityContext") or {}
    if pod.get("hostNetwork") or pod.get("hostPID") or pod.get("hostIPC"):
        err(w, "host namespaces are not allowed (restricted)")
    for c in containers:
        cw = f"{w} container {c.get('name')}"
        sc = c.get("securityContext") or {}
        if not (sc.get("runAsNonRoot", psc.get("runAsNonRoot"))):
            err(cw, "runAsNonRoot must be true")
        if sc.get("runAsUser", psc.get("runAsUser")) in (0, None):
            warn(cw, "no non-zero runAsUser (the image's USER decides)")
        if sc.get("allowPrivilegeEscalation") is not False:
            err(cw, "allowPrivilegeEscalation must be false")
        if sc.get("readOnlyRootFilesystem") is not True:
            err(cw, "readOnlyRootFilesystem must be true")
        if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
            err(cw, "capabilities.drop must contain ALL")
        if (sc.get("capabilities") or {}).get("add"):
            err(cw, "no capabilities may be added")
        seccomp = (sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            err(cw, "seccompProfile RuntimeDefault required (restricted)")
        if sc.get("privileged"):
            err(cw, "privileged")


def env_names(c: dict, configmaps: dict, secrets: dict, w: str) -> None:
    """envFrom/env references exist; $(VAR) only refers to names defined before (envFrom first, then env in order)."""
    defined: set[str] = set()
    for ef in c.get("envFrom") or []:
        if "configMapRef" in ef:
            name = ef["configMapRef"]["name"]
            if name not in configmaps:
                err(w, f"envFrom ConfigMap {name} not found")
            defined |= set(configmaps.get(name, {}))
        if "secretRef" in ef:
            name = ef["secretRef"]["name"]
            if name not in secrets:
                err(w, f"envFrom Secret {name} not found (not even in server-secret.example.yaml)")
            defined |= set(secrets.get(name, {}))
    for e in c.get("env") or []:
        name = e.get("name", "")
        vf = e.get("valueFrom") or {}
        if "configMapKeyRef" in vf:
            ref = vf["configMapKeyRef"]
            if ref["key"] not in configmaps.get(ref["name"], {}):
                err(w, f"env {name}: ConfigMap {ref['name']} has no key {ref['key']}")
        if "secretKeyRef" in vf:
            ref = vf["secretKeyRef"]
            if ref["name"] in secrets and ref["key"] not in secrets[ref["name"]]:
                err(w, f"env {name}: Secret {ref['name']} has no key {ref['key']}")
            elif ref["name"] not in secrets:
                warn(w, f"env {name}: Secret {ref['name']} is created out of band (not in these files)")
        if "fieldRef" in vf and vf["fieldRef"].get("fieldPath") not in (
                "status.podIP", "status.podIPs", "metadata.name", "metadata.namespace", "spec.nodeName",
                "status.hostIP", "spec.serviceAccountName", "metadata.uid"):
            err(w, f"env {name}: unusual fieldRef {vf['fieldRef']}")
        for ref in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", str(e.get("value", ""))):
            if ref not in defined:
                err(w, f"env {name} refers to $({ref}), which is not defined before it")
        defined.add(name)


def container_ports(c: dict) -> dict:
    return {p.get("name") or str(p["containerPort"]): p["containerPort"] for p in c.get("ports") or []}


def check_probe(w: str, probe: dict | None, ports: dict, paths: set[str], kind: str) -> None:
    if not probe:
        return
    if "httpGet" in probe:
        hg = probe["httpGet"]
        port = str(hg.get("port"))
        if port not in ports and port not in {str(v) for v in ports.values()}:
            err(w, f"{kind} port {port} is not a container port ({', '.join(ports)})")
        if hg.get("path") not in paths:
            err(w, f"{kind} path {hg.get('path')} is not served ({', '.join(sorted(paths))})")
    elif "tcpSocket" in probe:
        port = str(probe["tcpSocket"].get("port"))
        if port not in ports and port not in {str(v) for v in ports.values()}:
            err(w, f"{kind} tcpSocket port {port} is not a container port")
    elif "exec" not in probe and "grpc" not in probe:
        err(w, f"{kind} has no handler")


def check_deployment(src: str, d: dict, configmaps: dict, secrets: dict) -> None:
    w = where_of(src, d)
    spec = d.get("spec") or {}
    sel = (spec.get("selector") or {}).get("matchLabels") or {}
    tmpl = spec.get("template") or {}
    labels = (tmpl.get("metadata") or {}).get("labels") or {}
    if not selector_matches(sel, labels):
        err(w, f"selector {sel} does not match the template labels {labels}")
    pod = tmpl.get("spec") or {}
    containers = pod.get("containers") or []
    if not containers:
        err(w, "no containers")
    check_pod_security(w, pod, containers + (pod.get("initContainers") or []))
    if pod.get("automountServiceAccountToken") is not False:
        warn(w, "automountServiceAccountToken is not false")
    volumes = {v["name"]: v for v in pod.get("volumes") or []}
    name = d["metadata"]["name"]
    for c in containers:
        cw = f"{w} container {c.get('name')}"
        if not c.get("image"):
            err(cw, "no image")
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        for r in ("cpu", "memory"):
            if r not in req:
                err(cw, f"no {r} request")
        if "memory" not in lim:
            err(cw, "no memory limit")
        if "cpu" in req and "cpu" in lim and cpu(req["cpu"]) > cpu(lim["cpu"]):
            err(cw, "cpu request above the limit")
        if "memory" in req and "memory" in lim and mem(req["memory"]) > mem(lim["memory"]):
            err(cw, "memory request above the limit")
        for vm in c.get("volumeMounts") or []:
            if vm["name"] not in volumes:
                err(cw, f"volumeMount {vm['name']} has no volume")
            if vm.get("subPath") and "secret" in volumes.get(vm["name"], {}):
                warn(cw, f"subPath on Secret volume {vm['name']}: updates never reach the container")
        ports = container_ports(c)
        env_names(c, configmaps, secrets, cw)
        side = "client" if "client" in name else "server"
        for e in c.get("env") or []:
            check_config_key(cw, e["name"], side)
        is_server = "tunnel-server" in str(c.get("image"))
        paths = SERVER_PATHS if is_server else CLIENT_STATUS_PATHS
        for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
            check_probe(cw, c.get(kind), ports, paths, kind)
        if is_server:
            check_server(cw, d, c, ports, configmaps, secrets)
    # Prometheus annotations point at a real port and path.
    ann = (tmpl.get("metadata") or {}).get("annotations") or {}
    if ann.get("prometheus.io/scrape") == "true":
        all_ports = {str(p) for c in containers for p in container_ports(c).values()}
        if str(ann.get("prometheus.io/port")) not in all_ports:
            err(w, f"prometheus.io/port {ann.get('prometheus.io/port')} is not a container port")
        if ann.get("prometheus.io/path", "/metrics") not in SERVER_PATHS:
            err(w, "prometheus.io/path is not served")


def check_server(w: str, d: dict, c: dict, ports: dict, configmaps: dict, secrets: dict) -> None:
    spec = d["spec"]
    pod = spec["template"]["spec"]
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        if not c.get(kind):
            err(w, f"no {kind}")
    if ((c.get("readinessProbe") or {}).get("httpGet") or {}).get("path") != "/readyz":
        err(w, "readinessProbe must use /readyz (503 while draining)")
    if ((c.get("livenessProbe") or {}).get("httpGet") or {}).get("path") != "/healthz":
        err(w, "livenessProbe must use /healthz")
    settings, unknown = server_settings(c, configmaps, secrets)
    # Shutdown timing: grace >= preStop sleep + the host's shutdown timeout + margin. The server sets that timeout to
    # Tunnel:DrainTimeout + 5 s, at least 30 s (TunnelServerHost.cs), which replaces shutdownTimeoutSeconds.
    grace = pod.get("terminationGracePeriodSeconds", 30)
    pre = ((c.get("lifecycle") or {}).get("preStop") or {})
    sleep = 0
    if "exec" in pre:
        cmd = pre["exec"].get("command") or []
        if cmd[:1] == ["sleep"] and len(cmd) == 2:
            sleep = int(cmd[1])
    elif "sleep" in pre:
        sleep = int(pre["sleep"]["seconds"])
    if sleep <= 0:
        err(w, "no preStop sleep: endpoints may still route to the pod after SIGTERM")
    drain = DEFAULT_DRAIN_SECONDS
    if settings.get("Tunnel__DrainTimeout") is not None:
        raw = str(settings["Tunnel__DrainTimeout"])
        parsed = timespan_seconds(raw)
        if parsed is None:
            err(w, f"Tunnel__DrainTimeout {raw!r} is not a TimeSpan (e.g. \"00:00:25\")")
        elif re.fullmatch(r"\d+", raw.strip()):
            err(w, f"Tunnel__DrainTimeout {raw!r} is {raw.strip()} days in .NET; write seconds as hh:mm:ss "
                   "(\"00:00:25\")")
        else:
            drain = parsed
    shutdown = max(drain + SHUTDOWN_AFTER_DRAIN_SECONDS, MIN_SHUTDOWN_SECONDS)
    for key in settings:
        if key == "shutdownTimeoutSeconds":
            warn(w, f"shutdownTimeoutSeconds has no effect: the server sets the host's shutdown timeout to "
                    f"Tunnel__DrainTimeout + 5 s, at least 30 s ({shutdown:g} s here)")
        elif key.startswith("HostOptions"):
            err(w, f"{key}: the host does not read a HostOptions section, and the server sets the shutdown timeout "
                   "from Tunnel__DrainTimeout")
    if grace < 45:
        err(w, f"terminationGracePeriodSeconds {grace} < 45")
    if grace < sleep + shutdown + 5:
        err(w, f"terminationGracePeriodSeconds {grace} < preStop {sleep} + host shutdown timeout {shutdown:g} "
               f"(max(Tunnel__DrainTimeout + 5 s, 30 s)) + 5 s margin")
    # The Kestrel endpoints are container ports.
    endpoints = {}
    for k, v in settings.items():
        m = re.fullmatch(r"Kestrel__Endpoints__(\w+?)__Url", k)
        if m:
            endpoints[m.group(1)] = str(v or "")
    if endpoints and c.get("args"):
        warn(w, "args set as well as Kestrel endpoints: --urls is ignored when endpoints are configured")
    for ep, url in endpoints.items():
        m = re.search(r":(\d+)/?$", url)
        if not m or int(m.group(1)) not in ports.values():
            err(w, f"Kestrel endpoint {ep} ({url}) is not a container port")
    allowed = settings.get("AllowedHosts", "*")
    if allowed != "*" and "$(POD_IP)" not in str(allowed):
        err(w, "AllowedHosts without $(POD_IP): kubelet probes and Prometheus (Host: <pod IP>) would get 400")
    if pod.get("enableServiceLinks") is not False:
        warn(w, "enableServiceLinks is not false: Service variables end up in the configuration")
    check_directory(w, spec, settings, unknown, endpoints)
    ru = (spec.get("strategy") or {}).get("rollingUpdate") or {}
    if str(ru.get("maxUnavailable", "25%")) not in ("0", "0%"):
        warn(w, "rollingUpdate.maxUnavailable is not 0")


def server_settings(c: dict, configmaps: dict, secrets: dict) -> tuple[dict, list[str]]:
    """The container's environment as the server sees it: envFrom in order, then env (later names win). A value from
    a secretKeyRef is None (set, value unknown). Also the names of Secrets whose keys are unknown (created out of
    band)."""
    settings: dict = {}
    unknown: list[str] = []
    for ef in c.get("envFrom") or []:
        if "configMapRef" in ef:
            settings.update(configmaps.get(ef["configMapRef"]["name"], {}))
        if "secretRef" in ef:
            name = ef["secretRef"]["name"]
            if name in secrets:
                settings.update(secrets[name])
            else:
                unknown.append(name)
    for e in c.get("env") or []:
        vf = e.get("valueFrom") or {}
        if "value" in e:
            settings[e["name"]] = e["value"]
        elif "configMapKeyRef" in vf:
            ref = vf["configMapKeyRef"]
            settings[e["name"]] = configmaps.get(ref["name"], {}).get(ref["key"])
        elif "secretKeyRef" in vf:
            ref = vf["secretKeyRef"]
            settings[e["name"]] = secrets.get(ref["name"], {}).get(ref["key"])
        else:
            settings[e["name"]] = None
    return settings, unknown


def check_directory(w: str, spec: dict, settings: dict, unknown: list[str], endpoints: dict) -> None:
    """Several replicas need the Redis session directory; the directory needs the node secret and a node URL that
    reaches an endpoint speaking the protocol NodeForwarder sends (TunnelServerOptionsValidator.cs,
    NodeForwarder.cs)."""
    def missing(key: str, msg: str) -> None:
        if unknown:
            warn(w, f"{key} is not in these files; it must be in Secret {', '.join(unknown)} ({msg})")
        else:
            err(w, f"{key} is not set: {msg}")

    replicas = spec.get("replicas", 1)
    redis = "Tunnel__Directory__Redis" in settings and settings["Tunnel__Directory__Redis"] != ""
    if replicas > 1 and not redis:
        missing("Tunnel__Directory__Redis", f"replicas {replicas} need the Redis session directory, or each pod "
                                             "knows only its own sessions (404 on the others); else use replicas: 1")
    if not redis:
        return
    secret = settings.get("Tunnel__Directory__NodeSecret", "")
    if "Tunnel__Directory__NodeSecret" not in settings:
        missing("Tunnel__Directory__NodeSecret", "the server refuses to start when Tunnel__Directory__Redis is set "
                                                  "without it (at least 32 characters: openssl rand -hex 32)")
    elif secret is not None and "REPLACE" not in secret and len(secret) < 32:
        err(w, "Tunnel__Directory__NodeSecret is shorter than 32 characters; the server refuses to start")
    node_url = settings.get("Tunnel__Directory__NodeUrl")
    if not node_url:
        if any(re.search(r"//(0\.0\.0\.0|\[::\]|\*|\+)[:/]", u) for u in endpoints.values()):
            err(w, "Tunnel__Directory__NodeUrl is not set and Kestrel listens on a wildcard address, which other "
                   "pods cannot dial; the server refuses to start (set it to http://$(POD_IP):<node port>)")
        return
    node_url = str(node_url)
    if "$(POD_IP)" not in node_url:
        warn(w, "Tunnel__Directory__NodeUrl does not use the pod IP")
    m = re.fullmatch(r"(https?)://(\[[^\]]*\]|[^:/]+)(?::(\d+))?/?", node_url)
    if not m:
        err(w, f"Tunnel__Directory__NodeUrl {node_url} is not an http(s) URL without a path")
        return
    scheme, port = m.group(1), int(m.group(3) or (443 if m.group(1) == "https" else 80))
    hits = [ep for ep, url in endpoints.items() if re.search(rf":{port}/?$", url)]
    if not hits:
        err(w, f"Tunnel__Directory__NodeUrl {node_url}: port {port} is not a Kestrel endpoint "
               f"({', '.join(f'{e} {u}' for e, u in endpoints.items()) or 'none configured'})")
        return
    ep = hits[0]
    ep_scheme = endpoints[ep].split("://", 1)[0]
    if ep_scheme != scheme:
        err(w, f"Tunnel__Directory__NodeUrl {node_url} is {scheme}, but Kestrel endpoint {ep} serves {ep_scheme}")
    if scheme == "https":
        warn(w, f"Tunnel__Directory__NodeUrl {node_url} is https: NodeForwarder validates the certificate, which "
                "must then name the pod IP")
    protocols = str(settings.get(f"Kestrel__Endpoints__{ep}__Protocols")
                    or settings.get("Kestrel__EndpointDefaults__Protocols") or "Http1AndHttp2")
    wanted = FORWARDER_PROTOCOL
    if wanted is None:
        warn(w, f"{NODE_FORWARDER}: HTTP version not found; the node endpoint protocol is checked against HTTP/1.1")
        wanted = "Http1"
    # Cleartext Kestrel serves HTTP/2 only on an Http2-only endpoint (Http1AndHttp2 speaks HTTP/1.1 there).
    if wanted == "Http2" and ep_scheme == "http":
        ok = protocols == "Http2"
    else:
        ok = wanted in re.findall(r"Http\d", protocols)
    if not ok:
        err(w, f"Kestrel endpoint {ep} (Tunnel__Directory__NodeUrl) has Protocols {protocols}, but NodeForwarder "
               f"sends {wanted} ({NODE_FORWARDER}): every forwarded request would fail (400)")


def check_selects(w: str, selector: dict, deployments: list[tuple[str, dict]], what: str) -> list[dict]:
    hits = [d for _, d in deployments
            if selector_matches(selector, d["spec"]["template"]["metadata"].get("labels") or {})]
    if not hits:
        err(w, f"{what} selector {selector} matches no Deployment's pods")
    return hits


def check_objects(objs: list[tuple[str, dict]], secret_sources: list[tuple[str, dict]]) -> None:
    for src, o in objs:
        check_common(src, o)
        check_unknown_fields(where_of(src, o), o)
    seen = {}
    for src, o in objs:
        key = (o.get("kind"), (o.get("metadata") or {}).get("name"))
        if key in seen:
            err(where_of(src, o), f"duplicate of {seen[key]}")
        seen[key] = src
    configmaps = {o["metadata"]["name"]: o.get("data") or {} for _, o in objs if o.get("kind") == "ConfigMap"}
    secrets = {}
    for _, o in objs + secret_sources:
        if o.get("kind") == "Secret":
            secrets[o["metadata"]["name"]] = {**(o.get("data") or {}), **(o.get("stringData") or {})}
    for src, o in objs + secret_sources:
        if o.get("kind") == "Secret" and o["metadata"]["name"] == "tunnel2-server":
            for key in {**(o.get("data") or {}), **(o.get("stringData") or {})}:
                check_config_key(where_of(src, o), key, "server")
    deployments = [(s, o) for s, o in objs if o.get("kind") == "Deployment"]
    for src, o in deployments:
        check_deployment(src, o, configmaps, secrets)
    for src, o in objs:
        w = where_of(src, o)
        kind = o.get("kind")
        if kind == "Service":
            spec = o["spec"]
            pods = check_selects(w, spec.get("selector") or {}, deployments, "Service")
            pod_ports = {}
            for d in pods:
                for c in d["spec"]["template"]["spec"]["containers"]:
                    pod_ports.update(container_ports(c))
            for p in spec.get("ports") or []:
                tp = p.get("targetPort", p.get("port"))
                if str(tp) not in pod_ports and tp not in pod_ports.values():
                    err(w, f"targetPort {tp} is not a port of the selected pods ({', '.join(pod_ports)})")
                if len(spec.get("ports")) > 1 and not p.get("name"):
                    err(w, "ports need names when there are several")
            if spec.get("sessionAffinity", "None") != "None":
                warn(w, "sessionAffinity is set; the directory makes it unnecessary")
            if spec.get("type") in ("LoadBalancer", "NodePort") and spec.get("externalTrafficPolicy") != "Local":
                warn(w, "externalTrafficPolicy is not Local: callers' addresses are lost (per-address 404 limit)")
        elif kind == "PodDisruptionBudget":
            pods = check_selects(w, (o["spec"].get("selector") or {}).get("matchLabels") or {}, deployments, "PDB")
            for d in pods:
                if "minAvailable" in o["spec"] and int(o["spec"]["minAvailable"]) >= d["spec"].get("replicas", 1):
                    err(w, f"minAvailable {o['spec']['minAvailable']} >= replicas of {d['metadata']['name']}: "
                           "blocks every drain")
        elif kind == "NetworkPolicy":
            pods = check_selects(w, (o["spec"].get("podSelector") or {}).get("matchLabels") or {},
                                 deployments, "NetworkPolicy")
            nums = {p for d in pods for c in d["spec"]["template"]["spec"]["containers"]
                    for p in container_ports(c).values()}
            for rule in o["spec"].get("ingress") or []:
                for p in rule.get("ports") or []:
                    if p.get("port") not in nums:
                        err(w, f"port {p.get('port')} is not a port of the selected pods")
                for peer in rule.get("from") or []:
                    if "podSelector" in peer:
                        check_selects(w, peer["podSelector"].get("matchLabels") or {}, deployments, "peer")
        elif kind == "Ingress":
            services = {s["metadata"]["name"]: s for _, s in objs if s.get("kind") == "Service"}
            for rule in o["spec"].get("rules") or []:
                for path in (rule.get("http") or {}).get("paths") or []:
                    svc = path["backend"]["service"]
                    target = services.get(svc["name"])
                    if not target:
                        err(w, f"backend Service {svc['name']} not found")
                        continue
                    names = {p.get("name") for p in target["spec"]["ports"]}
                    nums = {p.get("port") for p in target["spec"]["ports"]}
                    if svc["port"].get("name") not in names and svc["port"].get("number") not in nums:
                        err(w, f"backend port {svc['port']} is not a port of Service {svc['name']}")
        elif kind == "Secret" and "example" not in src:
            err(w, "a Secret in the applied manifests: keep real Secrets out of these files")
    # Capacity on one 2-vCPU node during a rolling update (maxSurge 1).
    total = 0.0
    for _, d in deployments:
        replicas = d["spec"].get("replicas", 1)
        surge = 1 if (d["spec"].get("strategy") or {}).get("type", "RollingUpdate") == "RollingUpdate" else 0
        for c in d["spec"]["template"]["spec"]["containers"]:
            total += (replicas + surge) * cpu(((c.get("resources") or {}).get("requests") or {}).get("cpu", 0))
    if total > 1.6:
        warn("capacity", f"CPU requests {total:.2f} cores during a rollout; a 2-vCPU node has ~1.6-1.8 allocatable")


# ----------------------------------------------------------------------------------------------------- render
def kustomize_cmd() -> list[str] | None:
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    return None


def render(path: str) -> list[tuple[str, dict]] | None:
    cmd = kustomize_cmd()
    out = subprocess.run(cmd + [path], capture_output=True, text=True)
    if out.returncode != 0:
        err("kustomize", f"{' '.join(cmd)} {path} failed: {out.stderr.strip()}")
        return None
    return [("rendered", d) for d in yaml.safe_load_all(out.stdout) if d]


def check_rendered(label: str, objs: list[tuple[str, dict]], secret_sources, expect_tls: bool) -> None:
    before = len(errors)
    check_objects([(f"{label}", o) for _, o in objs], secret_sources)
    server = next((o for _, o in objs if o.get("kind") == "Deployment"
                   and o["metadata"]["name"] == "tunnel2-server"), None)
    if server and expect_tls:
        c = server["spec"]["template"]["spec"]["containers"][0]
        for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
            hg = c[kind]["httpGet"]
            if hg.get("scheme") != "HTTPS" or not hg.get("path"):
                err(label, f"{kind} after the TLS patch: {hg}")
        envs = {e["name"]: e.get("value") for e in c.get("env") or []}
        if not envs.get("Kestrel__Endpoints__Public__Url", "").startswith("https://"):
            err(label, "the TLS patch did not set an https endpoint")
        if "tls" not in {v["name"] for v in server["spec"]["template"]["spec"]["volumes"]}:
            err(label, "the TLS patch did not add the tls volume")
    print(f"  {label}: {len(objs)} objects, {len(errors) - before} errors")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--no-render", action="store_true", help="skip kubectl kustomize / kustomize build")
    args = ap.parse_args()

    files = manifest_files()
    objs = [x for f in files for x in load_file(f)]
    secret_sources = [x for x in objs if x[1].get("kind") == "Secret"]
    print(f"Parsed {len(files)} files, {len(objs)} objects: {', '.join(os.path.basename(f) for f in files)}")
    if not SERVER_OPTS or not CLIENT_OPTS:
        warn("options", "src/*/Tunnel*Options.cs not found: configuration keys not checked")

    # Every file in the folder, as if applied together (the examples included).
    check_objects(objs, [])

    # kustomization.yaml: files exist, and the patches target objects that exist.
    kpath = os.path.join(HERE, "kustomization.yaml")
    k = yaml.safe_load(open(kpath, encoding="utf-8"))
    for r in k.get("resources") or []:
        if not os.path.exists(os.path.join(HERE, r)):
            err("kustomization.yaml", f"resource {r} does not exist")
    kinds_names = {(o.get("kind"), o["metadata"]["name"]) for _, o in objs}
    for p in [f for f in os.listdir(HERE) if f.endswith(".patch.yaml")]:
        for _, o in load_file(os.path.join(HERE, p)):
            if (o.get("kind"), o["metadata"]["name"]) not in kinds_names:
                err(p, f"patch target {o.get('kind')}/{o['metadata']['name']} does not exist")
    images = {i["name"] for i in k.get("images") or []}
    for _, o in objs:
        if o.get("kind") == "Deployment":
            for c in o["spec"]["template"]["spec"]["containers"]:
                if c["image"].split(":")[0] not in images:
                    warn("kustomization.yaml", f"image {c['image']} has no images: entry")
    if any(o.get("kind") == "Secret" for r in k.get("resources") or []
           for _, o in load_file(os.path.join(HERE, r)) if os.path.exists(os.path.join(HERE, r))):
        err("kustomization.yaml", "lists a file with a Secret: an apply would overwrite the real Secret")

    if args.no_render:
        print("Rendering skipped (--no-render)")
    elif not kustomize_cmd():
        print("Rendering skipped: neither kubectl nor kustomize on PATH")
    else:
        print("Rendering with " + " ".join(kustomize_cmd()) + ":")
        rendered = render(HERE)
        if rendered is not None:
            check_rendered("kustomization.yaml", rendered, secret_sources, expect_tls=False)
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copy(os.path.join(HERE, "kestrel-tls.patch.yaml"), tmp)
            with open(os.path.join(tmp, "kustomization.yaml"), "w", encoding="utf-8") as f:
                yaml.safe_dump({"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                                "resources": [os.path.relpath(HERE, tmp)], "patches": [{"path": "kestrel-tls.patch.yaml"}]}, f)
            rendered = render(tmp)
            if rendered is not None:
                check_rendered("overlay with kestrel-tls.patch.yaml", rendered, secret_sources, expect_tls=True)

    for line in warnings:
        print(line)
    for line in errors:
        print(line)
    print(f"{len(errors)} errors, {len(warnings)} warnings")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
