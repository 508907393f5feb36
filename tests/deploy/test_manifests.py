"""The deploy files agree with the code they deploy.

Every test reads a file under `deploy/` (Dockerfile, compose, Kubernetes, systemd, the
env template, docs/deploy.md) and compares it with what the code defines: the `handoff`
CLI's commands, `Settings` fields and defaults, `SEARCH_ATTRIBUTES`, the shipped
policy and the activity timeouts. Renaming a setting, a command or a port without
updating `deploy/` fails here.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest
import typer.main
import yaml
from pydantic import AliasChoices

from worker.cli import app as cli_app
from worker.settings import Settings
from workflows import options
from workflows.names import SEARCH_ATTRIBUTES
from workflows.policy import load_policy

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
DOCS = ROOT / "docs" / "deploy.md"

#: Paths the API serves for probes and scraping, per the API's design. Used only while
#: worker/http/api.py does not exist yet; once it does, the real routes are read instead.
DECLARED_API_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})

#: `handoff` subcommands the manifests run that the CLI does not have yet. Each is an
#: xfail(strict) case: once the command exists, the test passes unexpectedly and fails,
#: which is the reminder to delete it from this set.
PENDING_COMMANDS: dict[str, str] = {}
#: Commands docs/deploy.md mentions that are planned but not in the CLI yet.
PENDING_DOC_COMMANDS: dict[str, str] = {}

#: Variables a container sets for the Python process itself, not for `Settings`.
PROCESS_ENV = frozenset({"PATH", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE"})

#: The secrets the brief requires every Kubernetes deployment to take from a Secret.
REQUIRED_K8S_SECRETS = frozenset(
    {
        "TEMPORAL_API_KEY",
        "HANDOFF_HUBSPOT_TOKEN",
        "HANDOFF_HUBSPOT_APP_SECRET",
        "HANDOFF_LINK_SECRET",
        "HANDOFF_ENCRYPTION_KEYS",
        "HANDOFF_API_TOKENS",
    }
)

SECRETISH = re.compile(r"TOKEN|SECRET|KEY|PASSWORD|PWD", re.IGNORECASE)


# -- what the code defines ---------------------------------------------------------------
def _aliases() -> dict[str, str]:
    """Environment variable name -> Settings field name, from the validation aliases."""
    out: dict[str, str] = {}
    for name, f in Settings.model_fields.items():
        alias = f.validation_alias
        assert isinstance(alias, AliasChoices), f"Settings.{name} has no env alias"
        for choice in alias.choices:
            assert isinstance(choice, str)
            out[choice] = name
    return out


ALIASES = _aliases()
FIELD_ALIAS = {v: k for k, v in ALIASES.items()}
API_PORT = Settings.model_fields["api_port"].default
METRICS_PORT = Settings.model_fields["metrics_port"].default


def _annotation(env: str) -> str:
    return str(Settings.model_fields[ALIASES[env]].annotation)


def is_secret_setting(env: str) -> bool:
    """A secret is a `SecretStr` field (or a dict of them), or secret-sounding."""
    if env in ALIASES and "SecretStr" in _annotation(env):
        return True
    return bool(SECRETISH.search(env))


def is_path_setting(env: str) -> bool:
    return env in ALIASES and "Path" in _annotation(env)


def file_variant_target(env: str) -> str | None:
    """`X_FILE` -> `X` when X is a secret setting (read by Settings._secret_files)."""
    if env.endswith("_FILE") and env not in ALIASES:
        target = env[: -len("_FILE")]
        if target in ALIASES and "SecretStr" in _annotation(target):
            return target
    return None


def is_known_env(env: str) -> bool:
    return env in ALIASES or file_variant_target(env) is not None


def cli_commands() -> set[str]:
    """Every `handoff` command path, e.g. {"worker", "api", "sandbox hubspot", ...}."""
    found: set[str] = set()

    def walk(cmd: Any, prefix: str) -> None:
        for name, sub in getattr(cmd, "commands", {}).items():
            path = f"{prefix} {name}".strip()
            found.add(path)
            walk(sub, path)

    walk(typer.main.get_command(cli_app), "")
    return found


def longest_activity_timeout() -> timedelta:
    timeouts = [
        opts["start_to_close_timeout"]
        for opts in vars(options).values()
        if isinstance(opts, dict) and "start_to_close_timeout" in opts
    ]
    assert timeouts, "workflows/options.py defines no activity options"
    return max(timeouts)


def api_paths() -> tuple[frozenset[str], str]:
    """The API's real routes, from `worker.processes.api.create_app` (else the declared list)."""
    if not (ROOT / "worker" / "processes" / "api.py").exists():
        return DECLARED_API_PATHS, "declared (TODO: worker/processes/api.py not written yet)"
    from worker.processes.api import create_app

    # Building the app only stores the client; no route is called, so nothing connects.
    app = create_app(Settings(), cast(Any, object()))
    return frozenset(getattr(r, "path", "") for r in app.routes), "worker/processes/api.py"


# -- parsers -----------------------------------------------------------------------------
@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)


def parse_dockerfile(path: Path) -> tuple[dict[str, str], list[Stage]]:
    """Global ARGs and the stages, each with its (INSTRUCTION, arguments) lines."""
    text = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        instr, _, rest = line.partition(" ")
        instr, rest = instr.upper(), rest.strip()
        if instr == "FROM":
            m = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", rest, re.IGNORECASE)
            assert m, f"unparsed FROM: {rest}"
            stages.append(Stage(name=m.group(2) or str(len(stages)), base=m.group(1)))
        elif not stages:
            assert instr == "ARG", f"{instr} before the first FROM"
            k, _, v = rest.partition("=")
            global_args[k] = v
        else:
            stages[-1].instructions.append((instr, rest))
    return global_args, stages


class Dockerfile:
    def __init__(self, path: Path) -> None:
        self.args, self.stages = parse_dockerfile(path)
        self.by_name = {s.name: s for s in self.stages}

    def chain(self, name: str) -> list[Stage]:
        """The stage and the stages it is built FROM, outermost first."""
        stage = self.by_name[name]
        parents = self.chain(stage.base) if stage.base in self.by_name else []
        return [*parents, stage]

    def effective(self, name: str, instr: str) -> list[str]:
        return [rest for s in self.chain(name) for i, rest in s.instructions if i == instr]

    def last(self, name: str, instr: str) -> str | None:
        values = self.effective(name, instr)
        return values[-1] if values else None

    def env(self, name: str) -> dict[str, str]:
        out: dict[str, str] = {}
        for rest in self.effective(name, "ENV"):
            for token in shlex.split(rest):
                k, _, v = token.partition("=")
                out[k] = v
        return out

    def cmd(self, name: str) -> list[str]:
        raw = self.last(name, "CMD")
        assert raw is not None, f"stage {name} has no CMD"
        return list(json.loads(raw))  # exec form only: signals reach the process


def parse_unit(path: Path) -> dict[str, list[tuple[str, str]]]:
    """A systemd unit as section -> [(key, value)], keeping repeated keys."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        assert current is not None, f"{path.name}: key outside a section: {line}"
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not key=value: {line}"
        current.append((key.strip(), value.strip()))
    return sections


def unit_values(unit: dict[str, list[tuple[str, str]]], key: str) -> list[str]:
    return [v for k, v in unit.get("Service", []) if k == key]


def unit_env(unit: dict[str, list[tuple[str, str]]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for value in unit_values(unit, "Environment"):
        for token in shlex.split(value):
            k, _, v = token.partition("=")
            env[k] = v
    return env


def parse_env_file(path: Path) -> list[tuple[str, str, bool]]:
    """(name, value, active) for `NAME=value` and commented-out `#NAME=value` lines."""
    out = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        m = re.fullmatch(r"(#\s?)?([A-Z][A-Z0-9_]*)=(.*)", raw.strip())
        if m:
            out.append((m.group(2), m.group(3), m.group(1) is None))
    return out


_INTERP = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


def compose_default(value: Any) -> Any:
    """Resolve `${VAR:-default}` to its default, as compose would with VAR unset."""
    if not isinstance(value, str):
        return value
    return _INTERP.sub(lambda m: m.group(3) if m.group(2) in (":-", "-") else "", value)


def k8s_docs() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name in ("kustomization.yaml", "policy.yaml"):
            continue
        docs += [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    return docs


# -- loaded once -------------------------------------------------------------------------
DOCKERFILE = Dockerfile(DEPLOY / "Dockerfile")
COMPOSE: dict[str, Any] = yaml.safe_load((DEPLOY / "docker-compose.yaml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
#: Compose services that run Handoff (built from deploy/Dockerfile).
HANDOFF_SERVICES = {n: s for n, s in SERVICES.items() if "build" in s}
KUSTOMIZATION: dict[str, Any] = yaml.safe_load((K8S / "kustomization.yaml").read_text())
K8S_DOCS = k8s_docs()
UNITS = {p.stem: parse_unit(p) for p in sorted((DEPLOY / "systemd").glob("*.service"))}
ENV_EXAMPLE = parse_env_file(DEPLOY / "handoff.env.example")


def k8s(kind: str, name: str) -> dict[str, Any]:
    found = [d for d in K8S_DOCS if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name} in deploy/k8s, found {len(found)}"
    return found[0]


DEPLOYMENTS = {d["metadata"]["name"]: d for d in K8S_DOCS if d["kind"] == "Deployment"}
STATEFULSETS = {d["metadata"]["name"]: d for d in K8S_DOCS if d["kind"] == "StatefulSet"}


def containers() -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    for name, dep in DEPLOYMENTS.items():
        pod = dep["spec"]["template"]["spec"]
        for c in pod["containers"]:
            yield name, pod, c


def config_literals() -> dict[str, str]:
    """The `handoff-config` ConfigMap's literals (its keys become env vars)."""
    gen = {g["name"]: g for g in KUSTOMIZATION["configMapGenerator"]}["handoff-config"]
    return dict(lit.split("=", 1) for lit in gen["literals"])


def container_env(c: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Env var name -> its spec, including ConfigMap keys pulled in by envFrom."""
    env: dict[str, dict[str, Any]] = {}
    for src in c.get("envFrom", []):
        ref = src["configMapRef"]["name"]
        assert ref == "handoff-config", f"envFrom an unknown ConfigMap {ref}"
        env.update({k: {"name": k, "value": v} for k, v in config_literals().items()})
    env.update({e["name"]: e for e in c.get("env", [])})
    return env


def effective_port(env: dict[str, dict[str, Any]], setting: str) -> int:
    alias = FIELD_ALIAS[setting]
    value = env.get(alias, {}).get("value")
    return int(value) if value is not None else int(Settings.model_fields[setting].default)


def resolve_port(c: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    named = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    assert port in named, f"container {c['name']} has no port named {port}"
    return int(named[port])


# -- commands ----------------------------------------------------------------------------
def _commands_run() -> list[tuple[str, list[str]]]:
    runs: list[tuple[str, list[str]]] = []
    for stage in ("api", "worker"):
        runs.append((f"Dockerfile:{stage}", DOCKERFILE.cmd(stage)))
    for name, svc in HANDOFF_SERVICES.items():
        runs.append((f"compose:{name}", list(svc["command"])))
    for dep, _pod, c in containers():
        runs.append((f"k8s:{dep}", list(c["command"])))
    for unit_name, unit in UNITS.items():
        (exec_start,) = unit_values(unit, "ExecStart")
        argv = shlex.split(exec_start)
        runs.append((f"systemd:{unit_name}", [Path(argv[0]).name, *argv[1:]]))
    return runs


def _command_params() -> list[Any]:
    params = []
    for where, argv in _commands_run():
        sub = argv[1] if len(argv) > 1 else ""
        marks = (
            [
                pytest.mark.xfail(
                    strict=True, reason=f"TODO lead: add `handoff {sub}`: " + PENDING_COMMANDS[sub]
                )
            ]
            if sub in PENDING_COMMANDS
            else []
        )
        params.append(pytest.param(argv, id=f"{where}:{' '.join(argv)}", marks=marks))
    return params


@pytest.mark.parametrize("argv", _command_params())
def test_every_command_the_deploy_files_run_is_a_handoff_subcommand(argv: list[str]) -> None:
    """Each process a manifest starts is `handoff <command>` and that command exists."""
    assert argv[0] == "handoff", f"runs {argv[0]!r}, not the handoff console script"
    assert " ".join(argv[1:]) in cli_commands()


def test_worker_and_api_are_run_by_every_deploy_route() -> None:
    """Dockerfile targets, compose, Kubernetes and systemd each run both processes."""
    runs = _commands_run()
    for prefix in ("Dockerfile", "compose", "k8s", "systemd"):
        run = {" ".join(argv[1:]) for where, argv in runs if where.startswith(prefix)}
        assert {"worker", "api"} <= run, f"{prefix} runs {sorted(run)}"


# -- Dockerfile --------------------------------------------------------------------------
def test_dockerfile_has_builder_runtime_and_the_two_targets() -> None:
    """A builder stage, a runtime both targets derive from, and `worker` as default."""
    names = [s.name for s in DOCKERFILE.stages]
    assert {"builder", "runtime", "worker", "api"} <= set(names)
    assert DOCKERFILE.by_name["worker"].base == "runtime"
    assert DOCKERFILE.by_name["api"].base == "runtime"
    assert names[-1] == "worker", "the default target (last stage) should be the worker"
    copies = DOCKERFILE.effective("runtime", "COPY")
    assert any(c.startswith("--from=builder") for c in copies), "runtime must copy the venv"
    assert not any(
        i in ("RUN",) and "pip install" in r for i, r in DOCKERFILE.by_name["runtime"].instructions
    )


@pytest.mark.parametrize("stage", ["api", "worker"])
def test_dockerfile_targets_run_as_non_root(stage: str) -> None:
    """The effective USER of each target is not root."""
    user = DOCKERFILE.last(stage, "USER")
    assert user is not None, f"{stage} runs as root (no USER)"
    assert user.split(":")[0] not in ("root", "0")


@pytest.mark.parametrize(
    ("stage", "setting", "paths"),
    [("api", "api_port", {"/healthz"}), ("worker", "metrics_port", {"/metrics"})],
)
def test_dockerfile_exposes_and_health_checks_the_settings_port(
    stage: str, setting: str, paths: set[str]
) -> None:
    """EXPOSE and HEALTHCHECK use the Settings default port, env name and a real path."""
    default = Settings.model_fields[setting].default
    exposed = {
        int(p.split("/")[0]) for e in DOCKERFILE.effective(stage, "EXPOSE") for p in e.split()
    }
    assert exposed == {default}
    check = DOCKERFILE.last(stage, "HEALTHCHECK")
    assert check is not None, f"{stage} has no HEALTHCHECK"
    m = re.search(r"127\.0\.0\.1:%s(/\w+)' % os\.environ\.get\('(\w+)', '(\d+)'\)", check)
    assert m, f"unparsed HEALTHCHECK: {check}"
    path, env, port = m.groups()
    assert env == FIELD_ALIAS[setting]
    assert int(port) == default
    assert path in paths
    known, _ = api_paths()
    if stage == "api":
        assert path in known


def test_dockerfile_base_images_are_pinned() -> None:
    """Every FROM resolves to an image with an explicit version tag, never `latest`."""
    for stage in DOCKERFILE.stages:
        base = stage.base
        if base in DOCKERFILE.by_name:
            continue
        base = re.sub(r"\$\{(\w+)\}", lambda m: DOCKERFILE.args[m.group(1)], base)
        tag = base.rpartition(":")[2]
        assert ":" in base, f"untagged base {base}"
        assert re.match(r"\d+\.\d+\.\d+", tag), f"base {base} is not pinned to a version"


def test_dockerfile_env_and_stop_signal() -> None:
    """ENV sets only Settings aliases (or process variables), no secrets; SIGINT stops."""
    for stage in ("api", "worker"):
        env = DOCKERFILE.env(stage)
        unknown = {k for k in env if not is_known_env(k) and k not in PROCESS_ENV}
        assert not unknown, f"{stage}: ENV sets unknown variables {unknown}"
        assert not {k for k in env if is_secret_setting(k)}, "no secrets baked into images"
        assert env["HANDOFF_BUILD_ID"] == "${HANDOFF_BUILD_ID}", "build id from the build arg"
    assert DOCKERFILE.last("worker", "STOPSIGNAL") == "SIGINT"


# -- compose -----------------------------------------------------------------------------
def test_compose_registers_exactly_the_search_attributes_of_workflows_names() -> None:
    """The one-shot job's Name=Type arguments equal SEARCH_ATTRIBUTES, no more, no less."""
    job = SERVICES["temporal-search-attributes"]
    assert job["image"].startswith("temporalio/admin-tools:")
    assert "temporal operator search-attribute create" in " ".join(job["entrypoint"])
    pairs = [arg.split("=", 1) for arg in job["command"]]
    registered = dict(pairs)
    assert len(registered) == len(pairs), "an attribute is registered twice"
    assert registered == SEARCH_ATTRIBUTES


def test_compose_runs_temporal_on_postgres_with_ui_and_volume() -> None:
    """auto-setup with the postgres12 plugin, a data volume, and the UI on 8233."""
    temporal = SERVICES["temporal"]
    assert temporal["image"].startswith("temporalio/auto-setup:")
    assert temporal["environment"]["DB"] == "postgres12"
    assert temporal["environment"]["POSTGRES_SEEDS"] in SERVICES
    pg = SERVICES[temporal["environment"]["POSTGRES_SEEDS"]]
    assert any(
        v.endswith(":/var/lib/postgresql/data") and v.split(":")[0] in COMPOSE["volumes"]
        for v in pg["volumes"]
    )
    ui = SERVICES["temporal-ui"]
    assert ui["environment"]["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert any(str(p).split(":")[-2] == "8233" for p in ui["ports"])


def test_compose_images_are_pinned() -> None:
    """Every image has an explicit tag (defaults resolved), never `latest`."""
    for name, svc in SERVICES.items():
        image = compose_default(svc["image"])
        tag = image.rpartition(":")[2] if ":" in image else ""
        assert tag != "latest", f"{name}: {image}"
        assert re.search(r"\d", tag), f"{name}: unpinned {image}"


def test_compose_depends_on_conditions_have_health_checks() -> None:
    """Every service_healthy dependency has a healthcheck; Handoff waits for Temporal."""
    for name, svc in SERVICES.items():
        for dep, cond in (svc.get("depends_on") or {}).items():
            assert dep in SERVICES, f"{name} depends on unknown {dep}"
            if cond["condition"] == "service_healthy":
                assert "healthcheck" in SERVICES[dep], f"{dep} has no healthcheck"
            if cond["condition"] == "service_completed_successfully":
                assert SERVICES[dep].get("restart") == "no", f"{dep} is not one-shot"
    for name in ("worker", "api"):
        deps = HANDOFF_SERVICES[name]["depends_on"]
        assert deps["temporal"]["condition"] == "service_healthy"
        assert deps["temporal-search-attributes"]["condition"] == "service_completed_successfully"


@pytest.mark.parametrize(
    ("name", "target"), [("worker", "worker"), ("api", "api"), ("codec-server", "api")]
)
def test_compose_handoff_services_build_the_dockerfile_targets(name: str, target: str) -> None:
    """Handoff services build deploy/Dockerfile's stages and read the env file."""
    svc = HANDOFF_SERVICES[name]
    assert (DEPLOY / svc["build"]["context"] / svc["build"]["dockerfile"]).resolve() == (
        DEPLOY / "Dockerfile"
    ).resolve()
    assert svc["build"]["target"] == target
    assert target in DOCKERFILE.by_name
    assert svc["env_file"] == ["handoff.env"]


@pytest.mark.parametrize(
    ("name", "setting", "path"),
    [("api", "api_port", "/healthz"), ("worker", "metrics_port", "/metrics")],
)
def test_compose_health_checks_probe_the_settings_port(name: str, setting: str, path: str) -> None:
    """The healthcheck URL uses the Settings default port and its env name."""
    test = " ".join(HANDOFF_SERVICES[name]["healthcheck"]["test"])
    m = re.search(r"127\.0\.0\.1:%s(/\w+)' % os\.environ\.get\('(\w+)', '(\d+)'\)", test)
    assert m, f"unparsed healthcheck: {test}"
    assert m.groups() == (path, FIELD_ALIAS[setting], str(Settings.model_fields[setting].default))
    if name == "api":
        known, _ = api_paths()
        assert path in known


def test_compose_ports_match_settings_defaults() -> None:
    """The API publishes Settings.api_port; the worker exposes Settings.metrics_port."""
    api_ports = {int(str(p).split(":")[-1]) for p in HANDOFF_SERVICES["api"]["ports"]}
    assert api_ports == {API_PORT}
    assert {int(p) for p in HANDOFF_SERVICES["worker"]["expose"]} == {METRICS_PORT}
    for name in ("temporal", "temporal-ui", "codec-server"):
        for p in SERVICES[name].get("ports", []):
            assert str(p).startswith("127.0.0.1:"), f"{name} publishes {p} beyond loopback"


def test_compose_env_uses_real_settings_and_no_literal_secrets() -> None:
    """Handoff env names are Settings aliases; secret-ish values anywhere are ${VAR}."""
    for name, svc in HANDOFF_SERVICES.items():
        unknown = {k for k in svc["environment"] if not is_known_env(k)}
        assert not unknown, f"{name}: not Settings variables: {unknown}"
    for name, svc in SERVICES.items():
        env = svc.get("environment") or {}
        for key, value in env.items():
            if is_secret_setting(key):
                assert re.fullmatch(r"\$\{\w+(:\?[^}]*)?\}", str(value)), (
                    f"{name}: {key} must come from the env file or ${{VAR:?}}, not {value!r}"
                )


def test_compose_policy_mount_matches_handoff_policy() -> None:
    """HANDOFF_POLICY is the container side of a mounted file that is a valid policy."""
    for name, svc in HANDOFF_SERVICES.items():
        policy = svc["environment"]["HANDOFF_POLICY"]
        mounts = {v.split(":")[1]: v.split(":")[0] for v in svc["volumes"]}
        assert policy in mounts, f"{name}: nothing mounted at {policy}"
        source = (DEPLOY / mounts[policy]).resolve()
        assert load_policy(source).version


def test_compose_worker_stops_gracefully() -> None:
    """SIGINT and a grace period longer than the longest activity timeout."""
    worker = HANDOFF_SERVICES["worker"]
    assert worker["stop_signal"] == "SIGINT"
    grace = int(re.fullmatch(r"(\d+)s", worker["stop_grace_period"]).group(1))  # type: ignore[union-attr]
    assert timedelta(seconds=grace) > longest_activity_timeout()


# -- Kubernetes --------------------------------------------------------------------------
def test_k8s_manifests_are_namespace_agnostic_and_listed_in_the_kustomization() -> None:
    """No hard-coded namespace; every manifest file is a kustomize resource."""
    for d in K8S_DOCS:
        assert "namespace" not in d["metadata"], f"{d['kind']}/{d['metadata']['name']}"
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "policy.yaml"}
    assert set(KUSTOMIZATION["resources"]) == files


def test_k8s_env_names_are_settings_and_secrets_come_from_secrets() -> None:
    """Env and ConfigMap keys are Settings aliases; secrets use secretKeyRef only."""
    literals = config_literals()
    assert not {k for k in literals if not is_known_env(k)}, "unknown ConfigMap settings"
    assert not {k for k in literals if is_secret_setting(k)}, "a secret in the ConfigMap"
    seen_secret_refs: set[str] = set()
    for dep, pod, c in containers():
        mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
        secret_volumes = {v["name"] for v in pod["volumes"] if "secret" in v}
        for e in c.get("env", []):
            name = e["name"]
            assert is_known_env(name), f"{dep}: {name} is not a Settings variable"
            if not is_secret_setting(name):
                continue
            ref = e.get("valueFrom", {}).get("secretKeyRef")
            if ref is not None:
                assert ref["key"] == name, f"{dep}: {name} reads key {ref['key']}"
                seen_secret_refs.add(name)
            else:  # only a path into a mounted Secret is allowed as a literal
                assert is_path_setting(name) or file_variant_target(name), (
                    f"{dep}: secret {name} has a literal value"
                )
                assert any(
                    e["value"].startswith(p + "/") and mounts[p] in secret_volumes for p in mounts
                ), f"{dep}: {name} points outside a Secret volume"
    assert seen_secret_refs >= REQUIRED_K8S_SECRETS, REQUIRED_K8S_SECRETS - seen_secret_refs


def test_k8s_probes_and_ports_match_settings_and_api_routes() -> None:
    """API probes /healthz and /readyz, worker probes /metrics, on the configured ports."""
    known, _source = api_paths()
    api = next(c for d, _p, c in containers() if d == "handoff-api")
    env = container_env(api)
    port = effective_port(env, "api_port")
    assert port == API_PORT
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = api[probe]["httpGet"]
        assert get["path"] == path
        assert path in known
        assert resolve_port(api, get["port"]) == port
    worker = next(c for d, _p, c in containers() if d == "handoff-worker")
    wport = effective_port(container_env(worker), "metrics_port")
    assert wport == METRICS_PORT
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        get = worker[probe]["httpGet"]
        assert get["path"] == "/metrics"
        assert resolve_port(worker, get["port"]) == wport


def test_k8s_scrape_annotations_and_services_point_at_real_ports() -> None:
    """Prometheus annotations and Service targetPorts name the containers' ports."""
    expected = {"handoff-api": (API_PORT, "/metrics"), "handoff-worker": (METRICS_PORT, "/metrics")}
    known, _ = api_paths()
    assert "/metrics" in known
    for name, dep in DEPLOYMENTS.items():
        ann = dep["spec"]["template"]["metadata"]["annotations"]
        assert ann["prometheus.io/scrape"] == "true"
        assert (int(ann["prometheus.io/port"]), ann["prometheus.io/path"]) == expected[name]
    for svc in (d for d in K8S_DOCS if d["kind"] == "Service"):
        sel = svc["spec"]["selector"]
        if svc["metadata"]["name"] in STATEFULSETS:  # a database: test_k8s_stalls_postgresql
            continue
        targets = [
            n
            for n, d in DEPLOYMENTS.items()
            if d["spec"]["template"]["metadata"]["labels"].items() >= sel.items()
        ]
        assert len(targets) == 1, f"Service {svc['metadata']['name']} selects {targets}"
        c = DEPLOYMENTS[targets[0]]["spec"]["template"]["spec"]["containers"][0]
        for p in svc["spec"]["ports"]:
            assert resolve_port(c, p["targetPort"]) == expected[targets[0]][0]
    assert k8s("Service", "handoff-api")["spec"]["ports"][0]["port"] == API_PORT


def test_k8s_stalls_postgresql_is_pinned_non_root_and_reachable_by_its_service() -> None:
    """The stall store's PostgreSQL: a pinned image, not root, its password from a Secret,
    a volume, and a Service on 5432 that selects it; the Handoff pods read the DSN from
    their Secret."""
    sts = STATEFULSETS["stalls-postgresql"]
    pod = sts["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (c,) = pod["containers"]
    assert re.fullmatch(r"postgres:\d+\.\d+-\w+", c["image"]), c["image"]
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    password = next(e for e in c["env"] if e["name"] == "POSTGRES_PASSWORD")
    assert "secretKeyRef" in password["valueFrom"]
    assert [m["mountPath"] for m in c["volumeMounts"]] == ["/var/lib/postgresql/data"]
    assert sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    svc = k8s("Service", "stalls-postgresql")
    labels = sts["spec"]["template"]["metadata"]["labels"]
    assert labels.items() >= svc["spec"]["selector"].items()
    (port,) = svc["spec"]["ports"]
    assert port["port"] == 5432 and resolve_port(c, port["targetPort"]) == 5432
    for dep, _pod, handoff in containers():
        dsn = container_env(handoff)[FIELD_ALIAS["stalls_dsn"]]
        assert dsn["valueFrom"]["secretKeyRef"]["key"] == "HANDOFF_STALLS_DSN", dep


def test_k8s_policy_is_mounted_where_handoff_policy_points() -> None:
    """HANDOFF_POLICY is the mount path of the generated policy ConfigMap's key."""
    policy_path = config_literals()["HANDOFF_POLICY"]
    gens = {g["name"]: g for g in KUSTOMIZATION["configMapGenerator"]}
    for dep, pod, c in containers():
        mount = next(m for m in c["volumeMounts"] if m["mountPath"] == policy_path)
        volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
        gen = gens[volume["configMap"]["name"]]
        assert mount["subPath"] in gen["files"], f"{dep}: {mount['subPath']} not in ConfigMap"
        shipped = K8S / mount["subPath"]
        assert load_policy(shipped).version
        assert shipped.read_bytes() == (DEPLOY / "policy.example.yaml").read_bytes(), (
            "deploy/k8s/policy.yaml drifted from deploy/policy.example.yaml"
        )


def test_k8s_worker_has_hpa_pdb_resources_and_a_long_enough_grace_period() -> None:
    """HPA on CPU and PDB select the worker; limits set; grace > longest activity."""
    worker = DEPLOYMENTS["handoff-worker"]
    labels = worker["spec"]["template"]["metadata"]["labels"]
    hpa = k8s("HorizontalPodAutoscaler", "handoff-worker")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "handoff-worker",
    }
    assert hpa["spec"]["minReplicas"] >= 2
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
    assert "replicas" not in worker["spec"], "the HPA owns the worker's replica count"
    pdbs = [d for d in K8S_DOCS if d["kind"] == "PodDisruptionBudget"]
    assert any(labels.items() >= p["spec"]["selector"]["matchLabels"].items() for p in pdbs)
    pod = worker["spec"]["template"]["spec"]
    grace = timedelta(seconds=pod["terminationGracePeriodSeconds"])
    assert grace > longest_activity_timeout()
    (c,) = pod["containers"]
    assert c["resources"]["limits"]["memory"] == "600Mi"
    assert c["resources"]["requests"]["memory"].endswith("Mi")
    assert int(c["resources"]["requests"]["memory"][:-2]) <= 600


def test_k8s_pods_run_non_root_with_pinned_images() -> None:
    """runAsNonRoot with the image's uid; images and kustomize tags are not `latest`."""
    uid_line = next(r for i, r in DOCKERFILE.by_name["runtime"].instructions if i == "USER")
    for dep, pod, c in containers():
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert str(pod["securityContext"]["runAsUser"]) == uid_line.split(":")[0]
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
        tag = c["image"].rpartition(":")[2]
        assert ":" in c["image"], f"{dep}: untagged {c['image']}"
        assert tag != "latest", f"{dep}: {c['image']}"
    for image in KUSTOMIZATION["images"]:
        assert image["newTag"] != "latest"


def test_k8s_worker_build_id_comes_from_the_image_tag() -> None:
    """The kustomize replacement copies the worker image's tag into HANDOFF_BUILD_ID."""
    (rep,) = KUSTOMIZATION["replacements"]
    worker = next(c for d, _p, c in containers() if d == "handoff-worker")
    assert rep["source"]["name"] == "handoff-worker"
    assert rep["source"]["fieldPath"] == (
        f"spec.template.spec.containers.[name={worker['name']}].image"
    )
    assert rep["source"]["options"] == {"delimiter": ":", "index": 1}
    (target,) = rep["targets"]
    assert target["fieldPaths"] == [
        f"spec.template.spec.containers.[name={worker['name']}].env.[name="
        f"{FIELD_ALIAS['build_id']}].value"
    ]
    literal = container_env(worker)[FIELD_ALIAS["build_id"]]["value"]
    image_name = worker["image"].partition(":")[0]
    new_tag = {i["name"]: i["newTag"] for i in KUSTOMIZATION["images"]}[image_name]
    assert literal == new_tag == worker["image"].rpartition(":")[2]


def test_k8s_kustomize_renders_build_id_and_hashed_config() -> None:
    """`kubectl kustomize` output: build id = image tag, pods use the hashed ConfigMaps."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed; the raw manifests are checked above")
    out = subprocess.run(
        [kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    maps = {d["metadata"]["name"] for d in docs if d["kind"] == "ConfigMap"}
    for dep in (d for d in docs if d["kind"] == "Deployment"):
        pod = dep["spec"]["template"]["spec"]
        for c in pod["containers"]:
            assert {e["configMapRef"]["name"] for e in c["envFrom"]} <= maps
            if dep["metadata"]["name"] == "handoff-worker":
                env = {e["name"]: e.get("value") for e in c["env"]}
                assert env[FIELD_ALIAS["build_id"]] == c["image"].rpartition(":")[2]
        assert {v["configMap"]["name"] for v in pod["volumes"] if "configMap" in v} <= maps


# -- systemd -----------------------------------------------------------------------------
@pytest.mark.parametrize("unit_name", ["handoff-worker", "handoff-api"])
def test_systemd_unit_is_hardened_and_reads_the_env_file(unit_name: str) -> None:
    """Dedicated user, env file, restart on failure, hardening, writable state dir only."""
    unit = UNITS[unit_name]
    service = dict(unit["Service"])
    assert service["User"] not in ("root", "0")
    assert service["EnvironmentFile"] == "/etc/handoff/handoff.env"
    assert service["Restart"] == "on-failure"
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "PrivateTmp": "yes",
        "ProtectHome": "yes",
    }.items():
        assert service.get(key) == value, f"{unit_name}: {key}"
    env = unit_env(unit)
    assert env[FIELD_ALIAS["state_dir"]] in service["ReadWritePaths"].split()
    assert unit["Install"] == [("WantedBy", "multi-user.target")]


def test_systemd_env_is_real_settings_without_secrets() -> None:
    """Environment= sets Settings aliases only and never a secret."""
    for unit_name, unit in UNITS.items():
        for key in unit_env(unit):
            assert is_known_env(key), f"{unit_name}: {key} is not a Settings variable"
            assert not is_secret_setting(key), f"{unit_name}: secret {key} in the unit file"


def test_systemd_policy_and_state_agree_with_the_env_template() -> None:
    """The unit's HANDOFF_POLICY/STATE_DIR equal the template's, under its directories."""
    example = {k: v for k, v, active in ENV_EXAMPLE if active}
    for unit_name, unit in UNITS.items():
        env = unit_env(unit)
        service = dict(unit["Service"])
        for setting in ("policy_path", "state_dir"):
            alias = FIELD_ALIAS[setting]
            assert env[alias] == example[alias], f"{unit_name}: {alias}"
        assert env[FIELD_ALIAS["policy_path"]].startswith(
            f"/etc/{service['ConfigurationDirectory']}/"
        )
        assert env[FIELD_ALIAS["state_dir"]] == f"/var/lib/{service['StateDirectory']}"


def test_systemd_worker_drains_on_sigint() -> None:
    """KillSignal=SIGINT and a stop timeout longer than the longest activity timeout."""
    service = dict(UNITS["handoff-worker"]["Service"])
    assert service["KillSignal"] == "SIGINT"
    assert timedelta(seconds=int(service["TimeoutStopSec"])) > longest_activity_timeout()


# -- the env template --------------------------------------------------------------------
def test_env_example_lists_every_setting_exactly_once() -> None:
    """handoff.env.example names every Settings alias, and nothing else."""
    names = [n for n, _v, _a in ENV_EXAMPLE]
    assert len(names) == len(set(names)), "a variable is listed twice"
    assert set(names) == set(ALIASES)


def test_env_example_leaves_secrets_empty() -> None:
    """Secret settings are empty (commented out); secret paths are absolute paths."""
    for name, value, active in ENV_EXAMPLE:
        if is_path_setting(name):
            assert value == "" or value.startswith("/"), f"{name}={value}"
        elif is_secret_setting(name):
            assert value == "", f"{name} must be empty"
            assert not active, f"{name} must be commented out"


def test_env_example_active_lines_make_valid_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The uncommented lines, as they stand, are accepted by Settings."""
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in ALIASES:
        monkeypatch.delenv(name, raising=False)
    active = {n: v for n, v, a in ENV_EXAMPLE if a}
    for name, value in active.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.api_port == int(active[FIELD_ALIAS["api_port"]])
    assert str(settings.policy_path) == active[FIELD_ALIAS["policy_path"]]


def test_single_value_secrets_can_be_read_from_files(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`<NAME>_FILE` works for every plain SecretStr setting, as the template says."""
    monkeypatch.chdir(tmp_path)
    for env, name in ALIASES.items():
        annotation = _annotation(env)
        if "SecretStr" not in annotation or "dict" in annotation:
            continue
        monkeypatch.delenv(env, raising=False)
        secret = tmp_path / env
        secret.write_text(f"from-file-{env}\n", encoding="utf-8")
        monkeypatch.setenv(f"{env}_FILE", str(secret))
        value = getattr(Settings(), name)
        assert value is not None, f"{env}_FILE was ignored"
        assert value.get_secret_value() == f"from-file-{env}"
        monkeypatch.delenv(f"{env}_FILE")


# -- docs --------------------------------------------------------------------------------
def test_docs_register_the_same_search_attributes_on_cloud_and_self_hosted() -> None:
    """The tcld and `temporal operator` commands in docs/deploy.md list SEARCH_ATTRIBUTES."""
    text = DOCS.read_text(encoding="utf-8")
    tcld = dict(re.findall(r'--sa "(\w+)=(\w+)"', text))
    assert tcld == SEARCH_ATTRIBUTES
    operator = dict(re.findall(r"--name (\w+) --type (\w+)", text))
    assert operator == SEARCH_ATTRIBUTES


def test_docs_mention_every_handoff_command_they_use() -> None:
    """Each `handoff <command>` in docs/deploy.md exists (or is a known pending one)."""
    text = DOCS.read_text(encoding="utf-8")
    used = set(re.findall(r"`handoff ([a-z][a-z-]+(?: [a-z][a-z-]+)?)", text))
    commands = cli_commands()
    pending = set(PENDING_COMMANDS) | set(PENDING_DOC_COMMANDS)
    missing = {
        u
        for u in used
        if u not in commands and u.split()[0] not in commands and u.split()[0] not in pending
    }
    assert not missing, f"docs/deploy.md uses commands the CLI lacks: {missing}"


def test_api_serves_every_path_the_manifests_probe() -> None:
    """/healthz, /readyz and /metrics are routes of the real API app."""
    paths, source = api_paths()
    assert paths >= DECLARED_API_PATHS, f"{source} lacks {DECLARED_API_PATHS - paths}"
