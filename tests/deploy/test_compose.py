"""docker/compose.yml, docker/haproxy.cfg, docker/Dockerfile and .dockerignore against the
code: every variable is a setting the gateway reads (and its value one the gateway
accepts), secrets are asked for and never written, health checks reach real endpoints,
ports agree, two gateways behind the proxy, scalable workers, one scheduler, migrations
once before the rest, Redis with an append-only file, PostgreSQL on a volume, an image
that does not run as root.

There is no Docker engine here: nothing is built or started; what compose would do is
read from the file (merge keys, ``${VAR}`` interpolation) by tests/deploy/files.py.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from dotenv import dotenv_values

from gateway.cli.main import _parser
from gateway.settings import EXAMPLE_SECRETS, Settings
from tests.deploy.files import (
    COMPOSE,
    DOCKERFILE,
    DOCKERIGNORE,
    ENV_EXAMPLE,
    HAPROXY,
    SETTINGS_FILE,
    MissingVariable,
    accepted_settings,
    command,
    dockerfile_stages,
    environment,
    haproxy_sections,
    load_compose,
    references,
    resolve,
)

# What an operator puts in docker/.env (or the shell) before `docker compose up`.
OPERATOR = {
    "POSTGRES_PASSWORD": secrets.token_urlsafe(24),
    "EVENT_SOURCES": f"onestop:{secrets.token_urlsafe(32)}",
    "SMS_WEBHOOK_SECRET": secrets.token_urlsafe(32),
    "OPS_TOKEN": secrets.token_urlsafe(32),
    "CITIZEN_SECRET": secrets.token_urlsafe(32),
    "PUBLIC_BASE_URL": "https://tthc.example.gov.vn",
}
IMAGE_BUILD = "docker/Dockerfile"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return resolve(load_compose(), OPERATOR)  # type: ignore[no-any-return]


def _services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]  # type: ignore[no-any-return]


def _app(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services that run the gateway's image (tthc ...)."""
    return {
        name: service
        for name, service in _services(compose).items()
        if (service.get("build") or {}).get("dockerfile") == IMAGE_BUILD
    }


def _by_command(compose: dict[str, Any], *args: str) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in _app(compose).items() if command(s) == list(args)}


def _port(service: dict[str, Any]) -> int:
    return int(environment(service)["HTTP_PORT"])


def _healthcheck_url(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    text = " ".join(test) if isinstance(test, list) else test
    start = text.index("http://")
    return text[start:].split("'")[0].split('"')[0].split()[0]


def _all_references(node: Any) -> list[tuple[str, str]]:
    if isinstance(node, str):
        return references(node)
    if isinstance(node, dict):
        node = list(node.values())
    if isinstance(node, list):
        return [ref for item in node for ref in _all_references(item)]
    return []


# --- settings -------------------------------------------------------------------------------


def test_the_list_of_settings_comes_from_the_code() -> None:
    accepted = accepted_settings()
    assert {"DATABASE_URL", "REDIS_URL", "HTTP_PORT", "HTTP_WORKERS", "OPS_TOKEN"} <= accepted.names
    assert "ZNS_TEMPLATE_INVITATION" in accepted
    # A misspelt variable is silently ignored by the gateway: here it is caught.
    assert "HTTP_PROT" not in accepted
    assert "ZNS_TEMPLATE_" not in accepted


def test_every_app_variable_is_a_setting_the_gateway_reads(compose: dict[str, Any]) -> None:
    accepted = accepted_settings()
    app = _app(compose)
    assert len(app) >= 5
    for name, service in app.items():
        unknown = sorted(set(environment(service)) - accepted.names)
        unknown = [key for key in unknown if key not in accepted]
        assert not unknown, f"{name}: not settings of the gateway: {unknown}"


def test_every_app_environment_is_accepted_by_the_settings_code(compose: dict[str, Any]) -> None:
    """The values, not only the names: each service's environment builds Settings and
    passes the start-up secret check, as `tthc serve`/`tthc worker` would."""
    for name, service in _app(compose).items():
        settings = Settings.from_mapping(environment(service))
        settings.check_secrets()
        assert settings.database_url.startswith("postgresql://"), name
        assert dict(settings.event_sources) == {
            "onestop": OPERATOR["EVENT_SOURCES"].split(":", 1)[1]
        }


def test_a_settings_file_copied_from_env_example_still_starts_every_service(
    compose: dict[str, Any],
) -> None:
    """What a container sees: the image's ENV, under the env_file (here .env.example as
    copied, blank lines and example secret included), under compose's environment."""
    (run,) = [s for s in dockerfile_stages() if s.name == "run"]
    image = dict(pair.split("=", 1) for line in run.all("ENV") for pair in line.split())
    copied = {k: v or "" for k, v in dotenv_values(ENV_EXAMPLE).items()}
    for name, service in _app(compose).items():
        seen = {**image, **copied, **environment(service)}
        settings = Settings.from_mapping(seen)
        settings.check_secrets()
        if command(service) == ["serve"]:
            listen = (settings.http_host, settings.http_port)
            assert listen == ("0.0.0.0", _port(service)), name


def test_env_example_lists_only_settings() -> None:
    """.env.example is what operators copy to /etc/tthc/gateway.env (compose's env_file)."""
    accepted = accepted_settings()
    keys = set(dotenv_values(ENV_EXAMPLE))
    assert len(keys) > 40
    assert not sorted(k for k in keys if k not in accepted)


def test_secrets_are_asked_for_never_written(compose: dict[str, Any]) -> None:
    raw = load_compose()
    accepted = accepted_settings()
    required = {name for name, op in _all_references(raw) if op == ":?"}
    assert {
        "POSTGRES_PASSWORD",
        "EVENT_SOURCES",
        "SMS_WEBHOOK_SECRET",
        "OPS_TOKEN",
        "CITIZEN_SECRET",
        "PUBLIC_BASE_URL",
    } <= required
    for name, service in raw["services"].items():
        for key, value in environment(service).items():
            if accepted.secret(key) or key == "POSTGRES_PASSWORD":
                assert references(value) == [(key, ":?")], f"{name}: {key} is written in the file"
            parts = urlsplit(value)
            if parts.scheme and parts.password is not None:
                assert parts.password.startswith("${") and ":?" in parts.password, (
                    f"{name}: a password in {key}"
                )
    # Without them compose refuses to start, naming the variable.
    for missing in sorted(required):
        with pytest.raises(MissingVariable) as refused:
            resolve(raw, {k: v for k, v in OPERATOR.items() if k != missing})
        assert refused.value.name == missing
    text = "\n".join(p.read_text() for p in (COMPOSE, HAPROXY, DOCKERFILE, DOCKERIGNORE))
    assert not [s for s in EXAMPLE_SECRETS if s in text]
    assert compose["services"]["gateway1"]["environment"]["OPS_TOKEN"] == OPERATOR["OPS_TOKEN"]


def test_the_settings_file_is_required_and_outside_the_repository(
    compose: dict[str, Any],
) -> None:
    for name, service in _app(load_compose()).items():
        (entry,) = service["env_file"]
        assert entry["required"] is True, name
        assert entry["path"] == f"${{TTHC_ENV_FILE:-{SETTINGS_FILE}}}", name
    assert _app(compose)["gateway1"]["env_file"][0]["path"] == SETTINGS_FILE


# --- topology -------------------------------------------------------------------------------


def test_every_app_command_is_a_command_of_the_cli(compose: dict[str, Any]) -> None:
    for name, service in _app(compose).items():
        args = _parser().parse_args(command(service))
        assert args.command in {"serve", "migrate", "worker"}, name


def test_two_gateways_behind_the_proxy_on_http_port(compose: dict[str, Any]) -> None:
    services = _services(compose)
    gateways = _by_command(compose, "serve")
    assert sorted(gateways) == ["gateway1", "gateway2"]
    backend = haproxy_sections()["backend gateways"]
    servers = {words[1]: words[2] for words in backend if words[0] == "server"}
    assert sorted(servers) == sorted(gateways)
    for name, gateway in gateways.items():
        env = environment(gateway)
        port = _port(gateway)
        assert env["HTTP_HOST"] == "0.0.0.0", name
        assert "ports" not in gateway, f"{name} must be reached only through the proxy"
        assert [str(p) for p in gateway["expose"]] == [str(port)]
        assert urlsplit(_healthcheck_url(gateway)).port == port
        assert servers[name] == f"{name}:{port}"
        assert gateway["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        # The proxy appends the client's address; the gateway reads that last entry.
        assert Settings.from_mapping(env).trust.trust_forwarded_for, name
    assert ["option", "forwardfor"] in haproxy_sections()["defaults"]
    published = {name for name, s in services.items() if s.get("ports")}
    assert published == {"proxy"}
    (mapping,) = services["proxy"]["ports"]
    container_port = str(mapping).rsplit(":", 1)[1]
    assert ["bind", f":{container_port}"] in haproxy_sections()["frontend public"]
    assert {
        name: dep["condition"] for name, dep in services["proxy"]["depends_on"].items()
    } == dict.fromkeys(gateways, "service_healthy")


def test_http_workers_per_gateway_is_a_valid_setting(compose: dict[str, Any]) -> None:
    for name, gateway in _by_command(compose, "serve").items():
        assert Settings.from_mapping(environment(gateway)).http_workers == 1, name
    for workers in ("1", "8"):
        scaled = resolve(load_compose(), {**OPERATOR, "HTTP_WORKERS": workers})
        gateway = scaled["services"]["gateway1"]
        assert Settings.from_mapping(environment(gateway)).http_workers == int(workers)


def test_one_scheduler_and_workers_that_scale(compose: dict[str, Any]) -> None:
    schedulers = _by_command(compose, "worker")
    assert list(schedulers) == ["scheduler"], "exactly one worker runs the cron"
    assert schedulers["scheduler"].get("deploy", {}).get("replicas", 1) == 1
    workers = _by_command(compose, "worker", "--no-cron")
    assert list(workers) == ["worker"]
    worker = workers["worker"]
    # `--scale worker=N` needs no fixed name and no published port.
    assert "container_name" not in worker and "ports" not in worker
    assert worker["deploy"]["replicas"] >= 1
    everything = set(_app(compose))
    assert everything == {"migrate", "gateway1", "gateway2", "scheduler", "worker"}


def test_migrations_run_once_before_the_rest(compose: dict[str, Any]) -> None:
    migrate = _by_command(compose, "migrate")
    assert list(migrate) == ["migrate"]
    job = migrate["migrate"]
    assert job["restart"] == "no"
    assert job["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name, service in _app(compose).items():
        if name == "migrate":
            continue
        condition = service["depends_on"]["migrate"]["condition"]
        assert condition == "service_completed_successfully", name


def test_redis_keeps_an_append_only_file_on_a_volume(compose: dict[str, Any]) -> None:
    services = _services(compose)
    redis = services["redis"]
    args = command(redis)
    assert args[0] == "redis-server"
    options = dict(zip(args[1::2], args[2::2], strict=True))
    assert options["--appendonly"] == "yes"
    assert options["--appendfsync"] in {"everysec", "always"}
    assert options["--maxmemory-policy"] == "noeviction"
    (volume,) = redis["volumes"]
    name, path = volume.split(":")[:2]
    assert path == "/data" and name in compose["volumes"]
    assert "redis-cli" in redis["healthcheck"]["test"]
    for service_name, service in _app(compose).items():
        url = urlsplit(environment(service)["REDIS_URL"])
        assert (url.hostname, url.port) == ("redis", 6379), service_name
        assert service["depends_on"].get("redis", {}).get("condition") in {
            None,
            "service_healthy",
        }


def test_postgresql_keeps_its_data_on_a_volume(compose: dict[str, Any]) -> None:
    services = _services(compose)
    postgres = services["postgres"]
    (volume,) = postgres["volumes"]
    name, path = volume.split(":")[:2]
    assert path == "/var/lib/postgresql/data" and name in compose["volumes"]
    assert "pg_isready" in postgres["healthcheck"]["test"]
    env = environment(postgres)
    assert env["POSTGRES_PASSWORD"] == OPERATOR["POSTGRES_PASSWORD"]
    for service_name, service in _app(compose).items():
        url = urlsplit(environment(service)["DATABASE_URL"])
        assert (url.hostname, url.port) == ("postgres", 5432), service_name
        assert (url.username, url.password) == (env["POSTGRES_USER"], env["POSTGRES_PASSWORD"])
        assert url.path == f"/{env['POSTGRES_DB']}"
    options = dict(o.split("=", 1) for o in command(postgres) if "=" in o)
    # An ingest group holds up to 512 advisory locks (README, "Several HTTP processes on
    # PostgreSQL"); the shared lock table (max_locks_per_transaction x max_connections)
    # must hold ten such groups in flight per HTTP process.
    http_processes = sum(
        Settings.from_mapping(environment(s)).http_workers
        for s in _by_command(compose, "serve").values()
    )
    slots = int(options["max_locks_per_transaction"]) * int(options["max_connections"])
    assert slots >= 512 * 10 * http_processes


# --- health checks reach real endpoints --------------------------------------------------


def _health_paths(compose: dict[str, Any]) -> set[str]:
    services = _services(compose)
    paths = {urlsplit(_healthcheck_url(s)).path for s in _by_command(compose, "serve").values()}
    paths.add(urlsplit(_healthcheck_url(services["proxy"])).path)  # through to a gateway
    backend = haproxy_sections()["backend gateways"]
    (send,) = [w for w in backend if w[:2] == ["http-check", "send"]]
    paths.add(send[send.index("uri") + 1])
    (run,) = [s for s in dockerfile_stages() if s.name == "run"]
    (check,) = run.all("HEALTHCHECK")
    paths.add(urlsplit(check[check.index("http://") :].split("'")[0] % "8080").path)
    return paths


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_health_checks_target_real_endpoints(compose: dict[str, Any], gateway: Any) -> None:
    paths = _health_paths(compose)
    assert paths == {"/healthz", "/readyz"}
    for path in sorted(paths):
        response = await gateway.client.get(path)
        assert response.status == 200, path
    response = await gateway.client.get("/no-such-health")
    assert response.status == 404
    for name, service in _app(compose).items():
        if command(service) != ["serve"]:
            assert service["healthcheck"] == {"disable": True}, name


# --- the image ------------------------------------------------------------------------------


def test_image_is_multi_stage_slim_and_runs_as_a_user() -> None:
    stages = dockerfile_stages()
    assert [s.name for s in stages] == ["build", "run"]
    run = stages[-1]
    assert run.all("COPY")[0].startswith("--from=build ")
    users = run.all("USER")
    assert users, "the final stage sets USER"
    user = users[-1].split(":")[0]
    assert user.isdigit() and int(user) != 0
    # No compiler and no package installation in the final stage.
    commands = " ".join(run.all("RUN"))
    for word in ("apt-get install", "gcc", "build-essential", "pip install"):
        assert word not in commands
    assert "slim" in Path(DOCKERFILE).read_text().split("ARG PYTHON_IMAGE=")[1].split()[0]
    assert run.all("ENTRYPOINT") == ['["tthc"]'] and run.all("CMD") == ['["serve"]']


def test_image_defaults_are_settings_and_agree_on_the_port() -> None:
    (run,) = [s for s in dockerfile_stages() if s.name == "run"]
    env: dict[str, str] = {}
    for line in run.all("ENV"):
        for pair in line.split():
            key, _, value = pair.partition("=")
            env[key] = value
    accepted = accepted_settings()
    ours = {k: v for k, v in env.items() if not k.startswith("PYTHON") and k != "PATH"}
    assert all(key in accepted for key in ours), ours
    assert run.all("EXPOSE") == [ours["HTTP_PORT"]]
    assert ours["HTTP_HOST"] == "0.0.0.0"
    assert not [k for k in ours if accepted.secret(k)]


def test_the_build_context_holds_only_what_the_image_copies() -> None:
    lines = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"
    included = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    copied: set[str] = set()
    for stage in dockerfile_stages():
        for args in stage.all("COPY"):
            if args.startswith("--from="):
                continue
            copied.update(args.split()[:-1])
    assert copied == included
    assert {"**/.env", "**/*.env"} <= set(lines)


# --- HAProxy --------------------------------------------------------------------------------


def test_haproxy_checks_readiness_and_finds_restarted_gateways() -> None:
    sections = haproxy_sections()
    backend = sections["backend gateways"]
    assert ["option", "httpchk"] in backend
    assert ["http-check", "expect", "status", "200"] in backend
    (defaults,) = [w for w in backend if w[0] == "default-server"]
    assert "check" in defaults and defaults[defaults.index("resolvers") + 1] == "docker"
    assert "resolvers docker" in sections
    timeouts = {w[1]: w[2] for w in sections["defaults"] if w[0] == "timeout"}
    assert "http-request" in timeouts


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="no haproxy binary on PATH")
def test_haproxy_accepts_the_configuration() -> None:
    done = subprocess.run(
        ["haproxy", "-c", "-f", str(HAPROXY)], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # The gateways' names resolve only inside compose's network; nothing else may warn.
    warnings = [
        line
        for line in (done.stdout + done.stderr).splitlines()
        if "WARNING" in line and "could not resolve address" not in line
    ]
    assert not warnings
