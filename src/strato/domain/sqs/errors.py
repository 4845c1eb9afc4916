"""SQS API errors: what a caller of the built-in queues is told went wrong.

SQS speaks the JSON protocol but keeps the codes of its older query protocol: an error's body
carries ``__type`` (the error shape of botocore's ``sqs`` model, ``QueueDoesNotExist``) and
the ``x-amzn-query-error`` header the query code and fault
(``AWS.SimpleQueueService.NonExistentQueue;Sender``), which is what SDKs report as the error
code (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/
sqs-json-api-responses.html). ``code`` is the shape name, ``query_code`` the legacy code; the
query codes and statuses are those of the ``sqs`` model before SQS moved to JSON. Batch
operations report an entry's failure with ``query_code`` as its ``Code``.

Hierarchy (all under ``LambdaApiError``, the root of AWS API errors, so that the API edge
handles them alike)::

    SqsError                           400 unless noted
    ├── QueueDoesNotExist              AWS.SimpleQueueService.NonExistentQueue
    ├── QueueNameExists                QueueAlreadyExists
    ├── InvalidAttributeName
    ├── InvalidAttributeValue
    ├── InvalidParameterValue          (not modelled: InvalidParameterValueException)
    ├── MissingParameter               (not modelled: MissingParameterException)
    ├── InvalidMessageContents
    ├── ReceiptHandleIsInvalid
    ├── MessageNotInflight             AWS.SimpleQueueService.MessageNotInflight
    ├── PurgeQueueInProgress           AWS.SimpleQueueService.PurgeQueueInProgress, 403
    ├── EmptyBatchRequest              AWS.SimpleQueueService.EmptyBatchRequest
    ├── TooManyEntriesInBatchRequest   AWS.SimpleQueueService.TooManyEntriesInBatchRequest
    ├── BatchEntryIdsNotDistinct       AWS.SimpleQueueService.BatchEntryIdsNotDistinct
    ├── InvalidBatchEntryId            AWS.SimpleQueueService.InvalidBatchEntryId
    ├── BatchRequestTooLong            AWS.SimpleQueueService.BatchRequestTooLong
    ├── InvalidAddress                 404
    └── UnsupportedOperation           AWS.SimpleQueueService.UnsupportedOperation
"""

from __future__ import annotations

from typing import ClassVar

from strato.domain.errors import LambdaApiError

QUEUE_DOES_NOT_EXIST = "The specified queue does not exist."


class SqsError(LambdaApiError):
    """An error of the SQS API."""

    code = "SqsError"
    status = 400
    body_type = None
    #: The query protocol's code (``x-amzn-query-error`` and batch entries' ``Code``).
    query_code: ClassVar[str] = "InternalError"
    sender_fault: ClassVar[bool] = True


class QueueDoesNotExist(SqsError):
    code = "QueueDoesNotExist"
    query_code = "AWS.SimpleQueueService.NonExistentQueue"

    def __init__(self, message: str = QUEUE_DOES_NOT_EXIST) -> None:
        super().__init__(message)


class QueueNameExists(SqsError):
    code = "QueueNameExists"
    query_code = "QueueAlreadyExists"


class InvalidAttributeName(SqsError):
    code = "InvalidAttributeName"
    query_code = "InvalidAttributeName"


class InvalidAttributeValue(SqsError):
    code = "InvalidAttributeValue"
    query_code = "InvalidAttributeValue"


class InvalidParameterValue(SqsError):
    code = "InvalidParameterValueException"
    query_code = "InvalidParameterValue"


class MissingParameter(SqsError):
    code = "MissingParameterException"
    query_code = "MissingParameter"

    @classmethod
    def named(cls, parameter: str) -> MissingParameter:
        return cls(f"The request must contain the parameter {parameter}.")


class InvalidMessageContents(SqsError):
    code = "InvalidMessageContents"
    query_code = "InvalidMessageContents"


class ReceiptHandleIsInvalid(SqsError):
    code = "ReceiptHandleIsInvalid"
    query_code = "ReceiptHandleIsInvalid"

    @classmethod
    def of(cls, handle: str) -> ReceiptHandleIsInvalid:
        return cls(f'The input receipt handle "{handle}" is not a valid receipt handle.')


class MessageNotInflight(SqsError):
    code = "MessageNotInflight"
    query_code = "AWS.SimpleQueueService.MessageNotInflight"

    def __init__(self, message: str = "The message referred to isn't in flight.") -> None:
        super().__init__(message)


class PurgeQueueInProgress(SqsError):
    code = "PurgeQueueInProgress"
    query_code = "AWS.SimpleQueueService.PurgeQueueInProgress"
    status = 403


class EmptyBatchRequest(SqsError):
    code = "EmptyBatchRequest"
    query_code = "AWS.SimpleQueueService.EmptyBatchRequest"


class TooManyEntriesInBatchRequest(SqsError):
    code = "TooManyEntriesInBatchRequest"
    query_code = "AWS.SimpleQueueService.TooManyEntriesInBatchRequest"


class BatchEntryIdsNotDistinct(SqsError):
    code = "BatchEntryIdsNotDistinct"
    query_code = "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"


class InvalidBatchEntryId(SqsError):
    code = "InvalidBatchEntryId"
    query_code = "AWS.SimpleQueueService.InvalidBatchEntryId"


class BatchRequestTooLong(SqsError):
    code = "BatchRequestTooLong"
    query_code = "AWS.SimpleQueueService.BatchRequestTooLong"


class InvalidAddress(SqsError):
    code = "InvalidAddress"
    query_code = "InvalidAddress"
    status = 404


class UnsupportedOperation(SqsError):
    code = "UnsupportedOperation"
    query_code = "AWS.SimpleQueueService.UnsupportedOperation"
