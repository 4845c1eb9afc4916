"""IAM and STS API errors: what a caller of the query-protocol APIs is told went wrong.

IAM and STS answer errors in the query protocol's XML form (``<ErrorResponse><Error><Type>
Sender</Type><Code>…</Code><Message>…</Message></Error>``); botocore reports ``Code`` as the
error code. Codes and statuses are those of botocore's ``iam`` and ``sts`` models (their
``error.code`` and ``httpStatusCode``); messages are AWS's, as recorded.

Hierarchy (all under ``LambdaApiError``, the root of AWS API errors, so that the edge handles
them alike)::

    IamError                      400 unless noted
    ├── NoSuchEntity              404
    ├── EntityAlreadyExists       409
    ├── DeleteConflict            409
    ├── MalformedPolicyDocument
    └── IamValidationError        ValidationError (the model's constraints)
    ExpiredTokenException         403  ExpiredToken: temporary credentials past their expiry
"""

from __future__ import annotations

from typing import ClassVar

from strato.domain.errors import LambdaApiError


class IamError(LambdaApiError):
    """An error of the IAM API; ``code`` is the query protocol's code."""

    code = "ServiceFailure"
    status = 400
    body_type = "Sender"
    #: Whether the client is at fault (the ``Type`` of the error: Sender or Receiver).
    sender_fault: ClassVar[bool] = True


class NoSuchEntity(IamError):
    code = "NoSuchEntity"
    status = 404

    @classmethod
    def role(cls, name: str) -> NoSuchEntity:
        return cls(f"The role with name {name} cannot be found.")

    @classmethod
    def role_policy(cls, policy_name: str) -> NoSuchEntity:
        return cls(f"The role policy with name {policy_name} cannot be found.")


class EntityAlreadyExists(IamError):
    code = "EntityAlreadyExists"
    status = 409


class DeleteConflict(IamError):
    code = "DeleteConflict"
    status = 409


class MalformedPolicyDocument(IamError):
    code = "MalformedPolicyDocument"
    status = 400


class IamValidationError(IamError):
    """A member breaks the model's constraints (IAM's text is the Lambda validator's:
    ``1 validation error detected: Value 'x' at 'roleName' failed to satisfy ...``)."""

    code = "ValidationError"
    status = 400

    @classmethod
    def from_items(cls, items: list[str]) -> IamValidationError:
        noun = "error" if len(items) == 1 else "errors"
        return cls(f"{len(items)} validation {noun} detected: " + "; ".join(items))


class ExpiredTokenException(LambdaApiError):
    """A request signed with temporary credentials whose expiry has passed.

    Every AWS service answers it 403 with ``The security token included in the request is
    expired``; query-protocol services (SQS's query code too) call it ``ExpiredToken``.
    """

    code = "ExpiredTokenException"
    status = 403
    body_type = None
    message_key = "message"

    def __init__(self, message: str = "The security token included in the request is expired") -> None:
        super().__init__(message)
