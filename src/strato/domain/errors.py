"""AWS API errors: what a caller of the Lambda API is told went wrong.

Services raise these; only the HTTP edge (``strato.api``) turns them into the wire form
(status, ``x-amzn-ErrorType`` header, JSON body). The code and HTTP status of each class is the
one AWS Lambda returns; see the error shapes in botocore's ``lambda`` service model.

AWS puts the human-readable text of some errors under ``Message`` and of others under
``message`` (ResourceNotFoundException uses ``Message``; InvalidParameterValueException,
ResourceConflictException and most others ``message``); ``message_key`` records which.
``body_type`` is the ``Type`` field AWS adds to user-fault errors, or None where AWS omits it.

Hierarchy::

    LambdaApiError
    ├── ValidationException               400  (model constraints: patterns, lengths, enums)
    ├── InvalidParameterValueException    400
    ├── InvalidRequestContentException    400
    ├── AccessDeniedException             403  (IAM: the caller may not perform the action)
    ├── MissingAuthenticationTokenException 403  (SigV4: the request carries no Authorization)
    ├── IncompleteSignatureException      403  (SigV4: the Authorization header is malformed)
    ├── UnrecognizedClientException       403  (SigV4: no credential has the access key id)
    ├── InvalidSignatureException         403  (SigV4: wrong signature, scope or date)
    ├── ResourceNotFoundException         404
    ├── ProvisionedConcurrencyConfigNotFoundException 404
    ├── ResourceConflictException         409
    ├── ResourceInUseException            400  (an event source mapping between states)
    ├── PreconditionFailedException       412
    ├── RequestTooLargeException          413
    ├── RequestEntityTooLargeException    413
    ├── TooManyRequestsException          429
    ├── UnsupportedOperationException     400  (an operation strato does not offer yet)
    └── ServiceException                  500
"""

from __future__ import annotations

from typing import ClassVar


class LambdaApiError(Exception):
    """An error the Lambda API reports to its caller."""

    code: ClassVar[str] = "ServiceException"
    status: ClassVar[int] = 500
    message_key: ClassVar[str] = "message"
    body_type: ClassVar[str | None] = "Service"

    def __init__(self, message: str, **fields: str) -> None:
        super().__init__(message)
        self.message = message
        #: Extra members of the error shape (for example ``Reason`` of TooManyRequestsException).
        self.fields = fields


class ValidationException(LambdaApiError):
    """One or more request members break the constraints of the service model.

    AWS's text is ``"N validation error(s) detected: <item>; <item>"`` where each item reads
    ``Value '<v>' at '<memberPath>' failed to satisfy constraint: Member must ...``.
    """

    code = "ValidationException"
    status = 400
    body_type = None

    @classmethod
    def from_items(cls, items: list[str]) -> ValidationException:
        noun = "error" if len(items) == 1 else "errors"
        return cls(f"{len(items)} validation {noun} detected: " + "; ".join(items))


class InvalidParameterValueException(LambdaApiError):
    code = "InvalidParameterValueException"
    status = 400
    body_type = "User"


class InvalidRequestContentException(LambdaApiError):
    code = "InvalidRequestContentException"
    status = 400
    body_type = "User"


class AccessDeniedException(LambdaApiError):
    """The caller's policies do not let it perform the action (IAM's authorisation decision).

    AWS's text is ``User: <arn> is not authorized to perform: <action> on resource: <arn>
    because ...`` under ``Message``, with no ``Type``.
    """

    code = "AccessDeniedException"
    status = 403
    message_key = "Message"
    body_type = None


class MissingAuthenticationTokenException(LambdaApiError):
    """The request is not signed: it has no ``Authorization`` header.

    AWS answers ``Missing Authentication Token`` under ``message``.
    """

    code = "MissingAuthenticationTokenException"
    status = 403
    body_type = None


class IncompleteSignatureException(LambdaApiError):
    """The ``Authorization`` header cannot be read as a Signature Version 4 one: a component
    (``Credential``, ``SignedHeaders``, ``Signature``) or the request date is missing, a
    component is not ``key=value``, or the credential is not five ``/``-separated elements."""

    code = "IncompleteSignatureException"
    status = 403
    body_type = None


class UnrecognizedClientException(LambdaApiError):
    """The access key id of the signature names no credential (AWS's text: ``The security
    token included in the request is invalid.``)."""

    code = "UnrecognizedClientException"
    status = 403
    body_type = None


class InvalidSignatureException(LambdaApiError):
    """The signature does not verify: it differs from the one strato computes, its date is
    more than five minutes from now, or its credential scope names the wrong date, service or
    terminator."""

    code = "InvalidSignatureException"
    status = 403
    body_type = None


class ResourceNotFoundException(LambdaApiError):
    code = "ResourceNotFoundException"
    status = 404
    message_key = "Message"
    body_type = "User"


class ProvisionedConcurrencyConfigNotFoundException(LambdaApiError):
    code = "ProvisionedConcurrencyConfigNotFoundException"
    status = 404
    body_type = "User"


class ResourceConflictException(LambdaApiError):
    code = "ResourceConflictException"
    status = 409
    body_type = "User"


class ResourceInUseException(LambdaApiError):
    """The resource is between states (an event source mapping being created, updated or
    deleted); the model gives its text as ``Message``."""

    code = "ResourceInUseException"
    status = 400
    message_key = "Message"
    body_type = "User"


class PreconditionFailedException(LambdaApiError):
    code = "PreconditionFailedException"
    status = 412
    body_type = "User"


class RequestTooLargeException(LambdaApiError):
    code = "RequestTooLargeException"
    status = 413
    body_type = "User"


class RequestEntityTooLargeException(LambdaApiError):
    """Raised before a body is read when it is larger than the operation accepts."""

    code = "RequestEntityTooLargeException"
    status = 413
    body_type = None


class TooManyRequestsException(LambdaApiError):
    code = "TooManyRequestsException"
    status = 429
    body_type = "User"


class UnsupportedOperationException(LambdaApiError):
    code = "UnsupportedOperationException"
    status = 400
    body_type = "User"


class ServiceException(LambdaApiError):
    code = "ServiceException"
    status = 500
    body_type = "Service"
