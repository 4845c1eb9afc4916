"""An execution environment's access to AWS APIs as its function's role.

Each environment gets credentials of a new session of its function's execution role, named
after the function (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``),
and ``AWS_ENDPOINT_URL``, which current AWS SDKs and CLIs use for every service: strato's own
API as the environment reaches it (an address inside its own network in the namespaces tier,
strato's listen address otherwise). The credentials last ``RoleSessions.lifetime_s``; the
environment pool retires an environment before they expire (``EnvironmentPool``'s
``max_environment_age_s``).
"""

from __future__ import annotations

from collections.abc import Mapping

from strato.auth.role_sessions import RoleSessions
from strato.domain.models import FunctionVersion


class ExecutionRoles:
    """The ``ExecutionRoleAccess`` of ``scheduler.environment_variables``."""

    def __init__(self, sessions: RoleSessions, endpoint_url: str) -> None:
        self._sessions = sessions
        self._endpoint_url = endpoint_url

    def variables(self, version: FunctionVersion) -> Mapping[str, str]:
        credentials = self._sessions.issue(version.role, version.name)
        return {
            "AWS_ACCESS_KEY_ID": credentials.access_key_id,
            "AWS_SECRET_ACCESS_KEY": credentials.secret_access_key,
            "AWS_SESSION_TOKEN": credentials.session_token,
            "AWS_ENDPOINT_URL": self._endpoint_url,
        }


def endpoint_url(inside: str | None, host: str, port: int) -> str:
    """The URL of strato's API from an environment: ``inside`` (``host:port`` the sandbox
    gives each environment, or None), else strato's listen address (loopback when it listens
    on every address)."""
    if inside is not None:
        return f"http://{inside}"
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
