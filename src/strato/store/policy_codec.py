"""Resource-policy statements ⇄ the JSON that SQLite (and later PostgreSQL) rows hold.

strato's own versioned form, not AWS's policy document (that one is rendered at the API edge,
with the function's ARN, which depends on the caller's region)::

    {"format": 1, "statements": [{"sid": ..., "effect": "Allow", "action": ...,
      "principal": {"kind": "AWS", "value": ...},
      "conditions": [{"operator": ..., "key": ..., "values": [...]}]}]}
"""

from __future__ import annotations

import json
from typing import Any

from strato.domain.permissions import (
    Condition,
    Effect,
    PermissionStatement,
    PrincipalKind,
    StatementPrincipal,
)
from strato.errors import StoreError

FORMAT = 1


def encode_statements(statements: tuple[PermissionStatement, ...]) -> str:
    return json.dumps(
        {
            "format": FORMAT,
            "statements": [
                {
                    "sid": s.sid,
                    "effect": s.effect.value,
                    "action": s.action,
                    "principal": {"kind": s.principal.kind.value, "value": s.principal.value},
                    "conditions": [
                        {"operator": c.operator, "key": c.key, "values": list(c.values)}
                        for c in s.conditions
                    ],
                }
                for s in statements
            ],
        },
        separators=(",", ":"),
    )


def decode_statements(text: str) -> tuple[PermissionStatement, ...]:
    """Raises StoreError for a document this version of strato cannot read."""
    try:
        data: Any = json.loads(text)
        if data.get("format") != FORMAT:
            raise ValueError(f"unknown format {data.get('format')!r}")
        return tuple(
            PermissionStatement(
                sid=s["sid"],
                action=s["action"],
                principal=StatementPrincipal(PrincipalKind(s["principal"]["kind"]), s["principal"]["value"]),
                conditions=tuple(
                    Condition(c["operator"], c["key"], tuple(c["values"])) for c in s["conditions"]
                ),
                effect=Effect(s["effect"]),
            )
            for s in data["statements"]
        )
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise StoreError(f"corrupt resource policy: {e}") from e
