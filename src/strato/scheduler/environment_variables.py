"""Lambda's environment variables for an execution environment.

What a function reads from ``os.environ`` on Lambda
(https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html): the reserved
variables (handler, region, function name, version, memory, log group and stream,
initialization type, Runtime API address; with the JSON log format also
``AWS_LAMBDA_LOG_FORMAT`` and ``AWS_LAMBDA_LOG_LEVEL``, the application log level, which
runtimes read to format and filter their logs: see docs/logging.md), the locale and time
zone, the paths the sandbox lays out, the execution role's credentials and the endpoint of
strato's API (``ExecutionRoleAccess``, when the platform gives them), and then the
function's own variables, which come last and so win (the API refuses reserved keys before
they are stored, see ``domain.validation.check_environment``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from strato.domain.models import FunctionVersion
from strato.domain.runtimes import execution_env
from strato.scheduler.layer_paths import LayerPlacement, layer_variables


class PathLayout(Protocol):
    """The part of a sandbox that knows where an environment finds its binaries."""

    def path_variables(self, runtime: str, task_root: str,
                       runtime_dir: str | None = None) -> dict[str, str]:
        """``PATH``, ``LD_LIBRARY_PATH``, ``LAMBDA_RUNTIME_DIR`` and the search path of
        ``runtime``'s language (``PYTHONPATH``, ``NODE_PATH``) as an environment of
        ``runtime`` with its code at ``task_root`` finds them in the sandbox's layout; its
        runtime at ``runtime_dir`` when given (else the sandbox's built-in runtime's)."""


class ExecutionRoleAccess(Protocol):
    """What an environment needs to call AWS APIs as its function's role
    (``strato.services.execution_roles``)."""

    def variables(self, version: FunctionVersion) -> Mapping[str, str]:
        """``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` and ``AWS_SESSION_TOKEN`` of a new
        session of ``version``'s role, and ``AWS_ENDPOINT_URL``: issued once per call, so call
        it once per environment started."""


class LambdaVariables:
    """An ``EnvironmentBuilder`` of the pool (``scheduler.pool``): called once per
    environment it starts, on the loop's thread; pure apart from asking ``layout`` for its
    paths and ``role_access`` for a new role session, so it may be called any number of
    times."""

    def __init__(self, layout: PathLayout, region: str,
                 role_access: ExecutionRoleAccess | None = None,
                 layers: LayerPlacement | None = None) -> None:
        self._layout = layout
        self._region = region
        self._role_access = role_access
        self._layers = layers

    def __call__(self, version: FunctionVersion, address: str, stream: str, task_root: str,
                 initialization_type: str, runtime_dir: str | None = None) -> dict[str, str]:
        """The variables of an environment of ``version`` whose Runtime API is at
        ``address``, logging to ``stream``, with its code at ``task_root`` and its runtime
        at ``runtime_dir`` (None: the sandbox's built-in runtime); ``initialization_type``
        is ``on-demand`` or ``provisioned-concurrency``."""
        region = self._region
        variables = {
            **self._layout.path_variables(version.runtime, task_root, runtime_dir),
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "LAMBDA_TASK_ROOT": task_root,
            "_HANDLER": version.handler,
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_LAMBDA_FUNCTION_NAME": version.name,
            "AWS_LAMBDA_FUNCTION_VERSION": version.version,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(version.memory_size),
            "AWS_LAMBDA_LOG_GROUP_NAME": version.log_group,
            "AWS_LAMBDA_LOG_STREAM_NAME": stream,
            "AWS_LAMBDA_INITIALIZATION_TYPE": initialization_type,
            "AWS_LAMBDA_RUNTIME_API": address,
        }
        if version.logging_config.is_json:
            variables["AWS_LAMBDA_LOG_FORMAT"] = "JSON"
            variables["AWS_LAMBDA_LOG_LEVEL"] = version.logging_config.application_log_level or "INFO"
        if (runtime_env := execution_env(version.runtime)) is not None:
            variables["AWS_EXECUTION_ENV"] = runtime_env
        opt = self._layers.seen_at(version) if self._layers is not None else None
        if opt is not None:  # the version's layers' directories in the search paths
            variables.update(layer_variables(variables, opt, version.runtime))
        if self._role_access is not None:
            variables.update(self._role_access.variables(version))
        variables.update(version.environment)
        return variables
