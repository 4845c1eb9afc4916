"""Lambda layers: published layer versions, their ARNs, and the layers a function uses.

A layer is a name in an account; publishing gives it version ``1``, ``2``, … (numbers are
never reused, even once every version is deleted). A ``LayerVersion`` is immutable apart from
its resource-based policy (AddLayerVersionPermission), which grants other accounts
``lambda:GetLayerVersion``. A function refers to at most five layer versions
(``FunctionLayer``), in the order their files are merged under ``/opt``; it keeps their
packages even after the layer version is deleted, as Lambda does
(https://docs.aws.amazon.com/lambda/latest/dg/chapter-layers.html).

The texts of the errors are AWS's (recorded responses of the Lambda API).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from datetime import datetime

from strato.domain.errors import InvalidParameterValueException
from strato.domain.limits import UNZIPPED_CODE_MAX_BYTES
from strato.domain.models import CodeRef, FunctionLayer
from strato.domain.permissions import PermissionStatement

#: A function may use at most this many layers ("Lambda quotas").
MAX_LAYERS_PER_FUNCTION = 5
#: The only action a layer version policy can grant.
GET_LAYER_VERSION = "lambda:GetLayerVersion"

_LAYER_ARN = re.compile(
    r"arn:(?P<partition>aws[a-zA-Z-]*)?:lambda:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"layer:(?P<name>[a-zA-Z0-9-_]+)(?::(?P<version>[0-9]+))?"
)


@dataclass(frozen=True)
class LayerId:
    """A layer: a name in an account."""

    account: str
    name: str

    def arn(self, region: str) -> str:
        return f"arn:aws:lambda:{region}:{self.account}:layer:{self.name}"

    def version_arn(self, region: str, version: int) -> str:
        return f"{self.arn(region)}:{version}"


@dataclass(frozen=True)
class LayerVersionArn:
    """A parsed layer version ARN (what ``Layers`` and GetLayerVersionByArn name)."""

    region: str
    layer: LayerId
    version: int

    def __str__(self) -> str:
        return self.layer.version_arn(self.region, self.version)


@dataclass(frozen=True)
class LayerVersion:
    """One published version of a layer.

    ``unzipped_size`` is the package's size once unpacked (it counts towards the 250 MB a
    function and its layers may take). ``statements`` is the version's resource-based policy,
    ``policy_revision_id`` its RevisionId (None while the policy is empty)."""

    layer: LayerId
    version: int
    code: CodeRef
    unzipped_size: int
    created: datetime
    description: str = ""
    license_info: str | None = None
    compatible_runtimes: tuple[str, ...] = ()
    compatible_architectures: tuple[str, ...] = ()
    statements: tuple[PermissionStatement, ...] = ()
    policy_revision_id: str | None = None

    def replace(self, **changes: object) -> LayerVersion:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def statement(self, sid: str) -> PermissionStatement | None:
        return next((s for s in self.statements if s.sid == sid), None)


def parse_layer_name(value: str, account: str) -> LayerId:
    """The layer a ``LayerName`` member names: a plain name in ``account``, or a layer ARN
    (the model's pattern already holds)."""
    match = _LAYER_ARN.fullmatch(value)
    if match is None:
        return LayerId(account, value)
    return LayerId(match["account"], match["name"])


def parse_layer_version_arn(value: str) -> LayerVersionArn | None:
    """A layer version ARN, or None when ``value`` is not one (the caller raises the error
    of its operation)."""
    match = _LAYER_ARN.fullmatch(value)
    if match is None or match["version"] is None:
        return None
    return LayerVersionArn(match["region"], LayerId(match["account"], match["name"]),
                           int(match["version"]))


def check_version_number(version: int) -> None:
    """AWS refuses a version number below 1 before looking anything up."""
    if version < 1:
        raise InvalidParameterValueException("Layer Version Cannot be less than 1")


def check_function_layers(arns: list[str]) -> list[LayerVersionArn]:
    """The parsed ``Layers`` of a function, checked as AWS checks them before resolving any:
    at most five, no two versions of one layer. Raises InvalidParameterValueException."""
    if len(arns) > MAX_LAYERS_PER_FUNCTION:
        raise InvalidParameterValueException(
            f"Cannot reference more than {MAX_LAYERS_PER_FUNCTION} layers."
        )
    parsed: list[LayerVersionArn] = []
    for value in arns:
        arn = parse_layer_version_arn(value)
        if arn is None:  # the model's pattern lets through only AWS-owned awslayer ARNs
            raise layer_version_missing(value)
        earlier = next((p for p in parsed if p.layer == arn.layer), None)
        if earlier is not None:
            raise InvalidParameterValueException(
                "Two different versions of the same layer are not allowed to be referenced "
                f"in the same function. {earlier} and {arn} are versions of the same layer."
            )
        parsed.append(arn)
    return parsed


def layer_version_missing(arn: str) -> InvalidParameterValueException:
    return InvalidParameterValueException(f"Layer version {arn} does not exist.")


def check_combined_size(code_unzipped: int, layers: tuple[FunctionLayer, ...]) -> None:
    """A function's package and its layers, unzipped, must fit in 250 MB together."""
    total = code_unzipped + sum(layer.unzipped_size for layer in layers)
    if total > UNZIPPED_CODE_MAX_BYTES:
        raise InvalidParameterValueException(
            "Function code combined with layers exceeds the maximum allowed size of "
            f"{UNZIPPED_CODE_MAX_BYTES} bytes. The actual size is {total} bytes."
        )
