"""Settings: the one place that reads the process environment and command-line values.

``Settings`` is frozen; ``app.py`` receives one and passes the parts each component needs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from strato.http.limits import HttpLimits

DEFAULT_ACCOUNT = "000000000000"
DEFAULT_REGION = "us-east-1"
MIN_LOG_QUOTA_MB = 4
#: The shortest role session lifetime: an environment needs some seconds to start and run.
MIN_ROLE_SESSION_S = 5.0


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 9000
    data_dir: Path = Path(".strato")
    #: The account every function belongs to (strato serves one account per data dir).
    account_id: str = DEFAULT_ACCOUNT
    #: Region assumed when a request's signature names none.
    default_region: str = DEFAULT_REGION
    #: Seconds an idle execution environment is kept warm before it is reaped.
    keep_alive_s: float = 300.0
    #: Account-wide limit of concurrent executions (GetAccountSettings reports it).
    account_concurrency: int = 1_000
    #: New execution environments a function may get per ``burst_window_s`` (Lambda's
    #: concurrency scaling rate: 1,000 every 10 seconds, refilled continuously).
    burst_concurrency: int = 1_000
    burst_window_s: float = 10.0
    #: Interpreters given explicitly, by Python version ("3.12" → path).
    interpreters: Mapping[str, str] = field(default_factory=dict)
    #: Java homes given explicitly, by major version (21 → path of a JDK or JRE home).
    java_homes: Mapping[int, str] = field(default_factory=dict)
    #: Enforce memory with cgroup v1 when the host offers it.
    use_cgroups: bool = True
    #: Sandbox tier: ``auto`` (the strongest the host allows), ``namespaces``, ``fallback``,
    #: or ``unconfined`` (``--unsafe-no-sandbox``, development only).
    sandbox: str = "auto"
    #: Limit each environment's CPU in proportion to its memory (1,769 MB = one vCPU).
    limit_cpu: bool = True
    #: Standby environments kept per runtime that boots ahead of its function (Node.js:
    #: ``sandbox/standby.py``; namespaces tier), made once it has a function
    #: (``STRATO_STANDBYS``); 0: none, every cold start starts its runtime afresh.
    standbys: int = 2
    #: Extra host paths bound read-only into every environment (namespaces tier).
    sandbox_binds: tuple[str, ...] = ()
    #: Egress of functions outside a VPC: ``internet`` or ``none``.
    egress: str = "internet"
    #: Internet egress: the prefix of the bridge's and nftables table's names, and the pool
    #: of subnets; each strato on a host takes a slot ``n`` of its own and uses
    #: ``<prefix><n>`` and the n-th /22 of the pool (``sandbox/network_slots.py``).
    egress_bridge: str = "strato"
    egress_subnet: str = "10.213.0.0/16"
    #: API authentication: ``sigv4`` (AWS Signature Version 4 with strato's credentials) or
    #: ``none`` (unauthenticated: every request acts as an administrator; development only).
    auth: str = "sigv4"
    #: ``ACCESS_KEY_ID:SECRET`` of an administrator key pair to create at start
    #: (``STRATO_ADMIN_CREDENTIALS``); none is generated then.
    admin_credentials: str | None = field(default=None, repr=False)
    #: How much faster than real time strato's engine clock runs (``STRATO_TIME_SCALE``,
    #: ``--time-scale``): waits of the asynchronous path (retries after 1 and 2 minutes,
    #: backoff, event ages) pass ``time_scale`` times faster. 1.0 is real time.
    time_scale: float = 1.0
    #: An external SQS-compatible endpoint (``STRATO_SQS_ENDPOINT``, ``--sqs-endpoint``): the
    #: queues of accounts other than strato's are reached there. ``STRATO_SQS_REGION``
    #: (default: ``default_region``) and ``STRATO_SQS_ACCESS_KEY_ID``/
    #: ``STRATO_SQS_SECRET_ACCESS_KEY`` (default: botocore's credential chain) sign its calls.
    sqs_endpoint: str | None = None
    sqs_region: str | None = None
    sqs_access_key_id: str | None = field(default=None, repr=False)
    sqs_secret_access_key: str | None = field(default=None, repr=False)
    #: The HTTP edge (``strato.http.limits`` gives each default's reason), on the API and on
    #: every environment's Runtime API: seconds to receive a request's head
    #: (``--http-header-timeout``, ``STRATO_HTTP_HEADER_TIMEOUT``), a whole request
    #: (``--http-request-timeout``, ``STRATO_HTTP_REQUEST_TIMEOUT``), before an idle
    #: keep-alive connection is closed (``--http-idle-timeout``, ``STRATO_HTTP_IDLE_TIMEOUT``);
    #: connections served at once (``--max-connections``, ``STRATO_MAX_CONNECTIONS``).
    http_header_timeout_s: float = HttpLimits.header_timeout_s
    http_request_timeout_s: float = HttpLimits.request_timeout_s
    http_idle_timeout_s: float = HttpLimits.idle_timeout_s
    max_connections: int = HttpLimits.max_connections
    #: Megabytes of log messages each function's log group may hold (``--log-quota-mb``,
    #: ``STRATO_LOG_QUOTA_MB``); its oldest events are deleted beyond it.
    log_quota_mb: int = 64
    #: Sessions of execution roles that were not created through IAM (a function may name
    #: any role ARN) may do anything (``--trust-unknown-roles``,
    #: ``STRATO_TRUST_UNKNOWN_ROLES=1``); by default they may do nothing.
    trust_unknown_roles: bool = False
    #: Seconds an execution environment's role credentials last (``--role-session-seconds``,
    #: ``STRATO_ROLE_SESSION_SECONDS``); environments are retired before theirs expire.
    role_session_s: float = 6 * 3600.0
    #: What strato gives every environment of a runtime besides the runtime itself, as
    #: Lambda does (``--runtime-deps``, ``STRATO_RUNTIME_DEPS``): the AWS SDK for Python in
    #: ``<dir>/python`` and for Node.js in ``<dir>/nodejs/node_modules``, installed by
    #: ``make`` (``runtime-deps``); ``sandbox/runtime_deps.py`` says how environments see it.
    runtime_deps: Path = field(default_factory=lambda: Path(sys.prefix) / "strato-runtime-deps")
    #: Node.js installations given explicitly, by major version ("20" → path of ``node``;
    #: ``STRATO_NODE_20``).
    node_installations: Mapping[str, str] = field(default_factory=dict)
    #: Function URLs: strato's address as clients reach it (``--public-url``,
    #: ``STRATO_PUBLIC_URL``, e.g. ``https://lambda.example.test``), which every
    #: ``FunctionUrl`` starts with; default ``http://<host>:<port>`` of the listening socket,
    #: 127.0.0.1 when it listens on every address (``public_base``).
    public_url: str | None = None
    #: Function URLs as host names ``<url id>.<url_host>`` (``--url-host``,
    #: ``STRATO_URL_HOST``) instead of paths ``/lambda-url/<url id>/`` below ``public_url``;
    #: the operator points ``*.<url_host>`` at strato (``domain.function_urls.UrlScheme``).
    url_host: str | None = None

    def __post_init__(self) -> None:
        """Raises ValueError (with ``HttpLimits``' message) for an HTTP setting out of range,
        for a log quota under ``MIN_LOG_QUOTA_MB`` and a role session under
        ``MIN_ROLE_SESSION_S``."""
        _ = self.http_limits
        if self.role_session_s < MIN_ROLE_SESSION_S:
            raise ValueError(f"role credentials must last at least {MIN_ROLE_SESSION_S} s, "
                             f"not {self.role_session_s}")
        if self.log_quota_mb < MIN_LOG_QUOTA_MB:
            raise ValueError(f"the log quota must be at least {MIN_LOG_QUOTA_MB} MB (an "
                             f"invocation's log alone can take 1 MB), not {self.log_quota_mb}")

    def public_base(self, port: int) -> str:
        """Strato's address as clients reach it, without a trailing ``/``: ``public_url`` when
        set, else the listen address and ``port`` (the bound one), loopback in place of "every
        address"."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else "::1" if self.host == "::" \
            else self.host
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    @property
    def http_limits(self) -> HttpLimits:
        """The limits of the API's and every Runtime API's HTTP edge."""
        return HttpLimits(
            header_timeout_s=self.http_header_timeout_s,
            request_timeout_s=self.http_request_timeout_s,
            idle_timeout_s=self.http_idle_timeout_s,
            max_connections=self.max_connections,
        )

    @classmethod
    def from_environment(
        cls, environ: Mapping[str, str] | None = None, **overrides: object
    ) -> Settings:
        """Build settings from ``STRATO_*`` variables, then ``overrides`` (CLI flags) on top.

        ``STRATO_PYTHON_3_12=/path/to/python3.12`` names an interpreter for a runtime,
        ``STRATO_NODE_20=/path/to/node`` the node of the ``nodejs20.x`` runtime,
        ``STRATO_JAVA_21=/path/to/java-home`` a Java home for the java21 runtime;
        ``STRATO_ACCOUNT_CONCURRENCY`` sets the account's concurrency limit.
        """
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        if "STRATO_DATA_DIR" in env:
            values["data_dir"] = Path(env["STRATO_DATA_DIR"])
        if "STRATO_KEEP_ALIVE" in env:
            values["keep_alive_s"] = float(env["STRATO_KEEP_ALIVE"])
        if "STRATO_ACCOUNT_ID" in env:
            values["account_id"] = env["STRATO_ACCOUNT_ID"]
        if "STRATO_REGION" in env:
            values["default_region"] = env["STRATO_REGION"]
        if "STRATO_ACCOUNT_CONCURRENCY" in env:
            values["account_concurrency"] = int(env["STRATO_ACCOUNT_CONCURRENCY"])
        if env.get("STRATO_NO_CGROUPS") == "1":
            values["use_cgroups"] = False
        if "STRATO_SANDBOX" in env:
            values["sandbox"] = env["STRATO_SANDBOX"]
        if env.get("STRATO_NO_CPU_LIMIT") == "1":
            values["limit_cpu"] = False
        if env.get("STRATO_STANDBYS"):
            values["standbys"] = int(env["STRATO_STANDBYS"])
        if env.get("STRATO_SANDBOX_BINDS"):
            values["sandbox_binds"] = tuple(p for p in env["STRATO_SANDBOX_BINDS"].split(":") if p)
        if "STRATO_EGRESS" in env:
            values["egress"] = env["STRATO_EGRESS"]
        if "STRATO_EGRESS_BRIDGE" in env:
            values["egress_bridge"] = env["STRATO_EGRESS_BRIDGE"]
        if "STRATO_EGRESS_SUBNET" in env:
            values["egress_subnet"] = env["STRATO_EGRESS_SUBNET"]
        if "STRATO_AUTH" in env:
            values["auth"] = env["STRATO_AUTH"]
        if env.get("STRATO_ADMIN_CREDENTIALS"):
            values["admin_credentials"] = env["STRATO_ADMIN_CREDENTIALS"]
        if env.get("STRATO_TRUST_UNKNOWN_ROLES") == "1":
            values["trust_unknown_roles"] = True
        if env.get("STRATO_ROLE_SESSION_SECONDS"):
            values["role_session_s"] = float(env["STRATO_ROLE_SESSION_SECONDS"])
        if env.get("STRATO_RUNTIME_DEPS"):
            values["runtime_deps"] = Path(env["STRATO_RUNTIME_DEPS"])
        if "STRATO_TIME_SCALE" in env:
            values["time_scale"] = float(env["STRATO_TIME_SCALE"])
        for variable, name, kind in (
            ("STRATO_HTTP_HEADER_TIMEOUT", "http_header_timeout_s", float),
            ("STRATO_HTTP_REQUEST_TIMEOUT", "http_request_timeout_s", float),
            ("STRATO_HTTP_IDLE_TIMEOUT", "http_idle_timeout_s", float),
            ("STRATO_MAX_CONNECTIONS", "max_connections", int),
            ("STRATO_LOG_QUOTA_MB", "log_quota_mb", int),
        ):
            if env.get(variable):
                values[name] = kind(env[variable])
        for variable, name in (("STRATO_PUBLIC_URL", "public_url"),
                               ("STRATO_URL_HOST", "url_host"),
                               ("STRATO_SQS_ENDPOINT", "sqs_endpoint"),
                               ("STRATO_SQS_REGION", "sqs_region"),
                               ("STRATO_SQS_ACCESS_KEY_ID", "sqs_access_key_id"),
                               ("STRATO_SQS_SECRET_ACCESS_KEY", "sqs_secret_access_key")):
            if env.get(variable):
                values[name] = env[variable]
        interpreters = {
            key.removeprefix("STRATO_PYTHON_").replace("_", "."): value
            for key, value in env.items()
            if key.startswith("STRATO_PYTHON_")
        }
        if interpreters:
            values["interpreters"] = interpreters
        nodes = {key.removeprefix("STRATO_NODE_"): value for key, value in env.items()
                 if key.startswith("STRATO_NODE_") and key.removeprefix("STRATO_NODE_").isdigit()}
        if nodes:
            values["node_installations"] = nodes
        java_homes = {
            int(key.removeprefix("STRATO_JAVA_")): value
            for key, value in env.items()
            if key.startswith("STRATO_JAVA_") and key.removeprefix("STRATO_JAVA_").isdigit()
        }
        if java_homes:
            values["java_homes"] = java_homes
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]
