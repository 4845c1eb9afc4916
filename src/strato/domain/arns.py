"""Function ARNs and the many spellings of a function's name.

The ``FunctionName`` member of most Lambda operations accepts a name (``my-function``), a name
with a qualifier (``my-function:1``), a partial ARN (``123456789012:function:my-function``) or a
full ARN (``arn:aws:lambda:us-west-2:123456789012:function:my-function[:alias]``).
``resolve_function_name`` turns all of them into a ``FunctionRef``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from strato.domain.errors import InvalidParameterValueException, ResourceNotFoundException

_FULL_ARN = re.compile(
    r"arn:(?P<partition>aws[a-zA-Z-]*):lambda:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"function:(?P<name>[^:]+)(?::(?P<qualifier>[^:]+))?"
)
_PARTIAL_ARN = re.compile(r"(?P<account>\d{12}):function:(?P<name>[^:]+)(?::(?P<qualifier>[^:]+))?")
_NAME = re.compile(r"(?P<name>[^:]+)(?::(?P<qualifier>[^:]+))?")


@dataclass(frozen=True)
class Scope:
    """Where a request is answered: the caller's region and strato's account."""

    region: str
    account: str

    def function_arn(self, name: str, qualifier: str | None = None) -> str:
        arn = f"arn:aws:lambda:{self.region}:{self.account}:function:{name}"
        return f"{arn}:{qualifier}" if qualifier else arn


@dataclass(frozen=True)
class FunctionRef:
    """A function name with the qualifier it was written with (None when unqualified)."""

    name: str
    qualifier: str | None = None


def resolve_function_name(
    value: str, scope: Scope, qualifier: str | None = None
) -> FunctionRef:
    """Resolve any spelling of ``FunctionName`` (plus a separate ``Qualifier``) in ``scope``.

    Raises ResourceNotFoundException for an ARN of another region (AWS's message), and
    InvalidParameterValueException when the qualifier in the name and ``qualifier`` disagree.
    """
    if value and ":" not in value:  # a plain name, as almost every invoke spells it
        return FunctionRef(value, qualifier)
    match = _FULL_ARN.fullmatch(value)
    if match:
        region = match["region"]
        if region != scope.region:
            raise ResourceNotFoundException(
                f"Functions from '{region}' are not reachable in this region ('{scope.region}')"
            )
    else:
        match = _PARTIAL_ARN.fullmatch(value) or _NAME.fullmatch(value)
    if match is None:
        # The model's pattern rejects these before a service sees them; a name that still
        # fails here cannot name a function.
        raise ResourceNotFoundException(f"Function not found: {scope.function_arn(value)}")
    embedded = match["qualifier"]
    if embedded and qualifier and embedded != qualifier:
        raise InvalidParameterValueException(
            "The derived qualifier from the function name does not match the specified "
            "qualifier."
        )
    return FunctionRef(match["name"], embedded or qualifier)
