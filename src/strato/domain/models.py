"""Frozen models of functions, the records that cross every boundary of strato.

A function has one mutable version, ``$LATEST``, and published versions (``1``, ``2``, …):
immutable snapshots of the same record. A ``FunctionVersion`` is everything needed to answer
GetFunctionConfiguration and to start an execution environment for that version. An ``Alias``
names a published version (or ``$LATEST``), optionally sending a share of invocations to a
second version; a ``ProvisionedConcurrencyConfig`` asks for environments kept initialised.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType

from strato.domain.logging_config import LoggingConfig

LATEST = "$LATEST"


class FunctionState(StrEnum):
    """``State`` of a function version (the function_active_v2 waiter polls it)."""

    PENDING = "Pending"
    ACTIVE = "Active"
    INACTIVE = "Inactive"
    FAILED = "Failed"


class LastUpdateStatus(StrEnum):
    """``LastUpdateStatus`` (the function_updated_v2 waiter polls it)."""

    IN_PROGRESS = "InProgress"
    SUCCESSFUL = "Successful"
    FAILED = "Failed"


@dataclass(frozen=True)
class CodeRef:
    """A deployment package in the content-addressed code store."""

    sha256_hex: str
    size: int

    @property
    def code_sha256(self) -> str:
        """``CodeSha256`` as AWS shows it: base64 of the SHA-256 digest of the zip bytes."""
        return base64.b64encode(binascii.unhexlify(self.sha256_hex)).decode()


@dataclass(frozen=True)
class FunctionLayer:
    """A layer version as a function version holds it (``domain.layers``): its ARN as AWS
    shows it under ``Layers``, and its package, which the function keeps even once the layer
    version is deleted."""

    arn: str
    code: CodeRef
    unzipped_size: int


def _frozen_map(values: Mapping[str, str] | None = None) -> Mapping[str, str]:
    return MappingProxyType(dict(values or {}))


@dataclass(frozen=True)
class VpcConfig:
    """A function's VpcConfig. strato has no VPCs: a function with subnets is run with no
    network egress at all (loopback only), the isolation a private subnet without a NAT
    gateway gives on Lambda."""

    subnet_ids: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()
    ipv6_allowed_for_dual_stack: bool = False


@dataclass(frozen=True)
class FunctionVersion:
    """The configuration and code of one version of a function.

    ``revision_id`` changes on every change of the record (it guards compare-and-swap updates,
    as RevisionId does on AWS). ``last_modified`` is a UTC datetime.
    """

    name: str
    runtime: str
    handler: str
    role: str
    code: CodeRef
    revision_id: str
    last_modified: datetime
    version: str = LATEST
    memory_size: int = 128
    timeout: int = 3
    ephemeral_storage: int = 512
    description: str = ""
    environment: Mapping[str, str] = field(default_factory=_frozen_map)
    #: True once the function was given an ``Environment``, even one with no variables: AWS
    #: then answers ``Environment: {"Variables": {}}`` and otherwise leaves the member out.
    environment_configured: bool = False
    architectures: tuple[str, ...] = ("x86_64",)
    state: FunctionState = FunctionState.PENDING
    state_reason: str | None = "The function is being created."
    state_reason_code: str | None = "Creating"
    last_update_status: LastUpdateStatus | None = None
    last_update_status_reason: str | None = None
    last_update_status_reason_code: str | None = None
    vpc_config: VpcConfig = VpcConfig()
    #: ``DeadLetterConfig.TargetArn``: the queue that receives events whose asynchronous
    #: invocation failed (None: none). Part of the version's configuration, as on Lambda.
    dead_letter_target: str | None = None
    #: ``LoggingConfig``: log format, levels and log group (``domain.logging_config``).
    logging_config: LoggingConfig = LoggingConfig()
    #: ``Layers``: the layer versions whose files are merged under /opt, in order.
    layers: tuple[FunctionLayer, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.environment, MappingProxyType):
            object.__setattr__(self, "environment", _frozen_map(self.environment))

    def replace(self, **changes: object) -> FunctionVersion:
        """A copy with ``changes`` applied (frozen records are never edited in place)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    @property
    def log_group(self) -> str:
        """Where the version's logs go: its LoggingConfig's group, by default
        ``/aws/lambda/<name>``."""
        return self.logging_config.log_group or f"/aws/lambda/{self.name}"

    @property
    def is_ready(self) -> bool:
        """True when the version can run (Active; an update in flight does not stop it)."""
        return self.state is FunctionState.ACTIVE


@dataclass(frozen=True)
class Alias:
    """An alias of a function: ``function_version`` serves every invocation except the share
    ``additional_weights`` (at most one version → weight in [0, 1]) sends elsewhere.

    ``revision_id`` changes on every change of the alias (compare-and-swap, as on AWS)."""

    function_name: str
    name: str
    function_version: str
    revision_id: str
    description: str = ""
    additional_weights: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        if not isinstance(self.additional_weights, MappingProxyType):
            object.__setattr__(self, "additional_weights",
                               MappingProxyType(dict(self.additional_weights)))

    def replace(self, **changes: object) -> Alias:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def versions(self) -> tuple[str, ...]:
        """Every version the alias may route to, its own first."""
        return (self.function_version, *self.additional_weights)


@dataclass(frozen=True)
class ProvisionedConcurrencyConfig:
    """A request to keep ``requested`` environments of a version or alias initialised."""

    function_name: str
    qualifier: str
    requested: int
    last_modified: datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def format_last_modified(moment: datetime) -> str:
    """AWS's ``LastModified`` text: ``2024-01-15T10:30:00.000+0000``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{moment.microsecond // 1000:03d}+0000"
    )
