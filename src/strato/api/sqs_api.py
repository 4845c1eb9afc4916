"""The SQS API of strato's built-in queues (JSON protocol), on the same endpoint as Lambda's.

``POST /`` with ``X-Amz-Target: AmazonSQS.<Operation>``: the request is parsed with botocore's
``sqs`` model, authorised as ``sqs:<Operation>`` on the queue's ARN (``*`` for operations on
no queue), run by the queue service on the event loop (the service does its storage on its
own thread, and long polls wait without one), and its output serialised with the model.
Queue URLs are ``http://<the host the client used>/<account>/<name>``.

Requests in SQS's older query protocol are answered with an error naming the protocol to
use (``sqs_wire.query_protocol_refusal``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from botocore.model import OperationModel  # type: ignore[import-untyped, unused-ignore]

from strato.api import json_protocol, sqs_wire
from strato.api.service_models import service_model
from strato.domain.arns import Scope
from strato.domain.errors import (
    LambdaApiError,
    RequestEntityTooLargeException,
    ServiceException,
)
from strato.domain.principals import Principal
from strato.domain.sqs import messages as rules
from strato.domain.sqs import queues as q
from strato.domain.sqs.batches import check_batch
from strato.domain.sqs.errors import (
    InvalidAddress,
    MissingParameter,
    QueueDoesNotExist,
    SqsError,
    UnsupportedOperation,
)
from strato.domain.sqs.sends import SendRequest
from strato.http.request import Request, Responder
from strato.services.sqs_queues import QueueService

log = logging.getLogger(__name__)

#: ``authorizer(principal, action, resource_arn)`` returns to allow, raises to deny.
Authorize = Callable[[Principal, str, str], None]


@dataclass(frozen=True)
class Call:
    """One SQS request as an operation sees it."""

    params: dict[str, Any]
    scope: Scope
    base_url: str
    sender_id: str


Operation = Callable[[Call], Awaitable[dict[str, Any]]]


class SqsApi:
    def __init__(self, service: QueueService, *, authorizer: Authorize | None = None) -> None:
        self._service = service
        self._authorizer = authorizer
        self._account = service.account
        self._tasks: set[asyncio.Task[None]] = set()
        self._operations: dict[str, Operation] = {
            "CreateQueue": self._create_queue,
            "GetQueueUrl": self._get_queue_url,
            "ListQueues": self._list_queues,
            "DeleteQueue": self._delete_queue,
            "GetQueueAttributes": self._get_queue_attributes,
            "SetQueueAttributes": self._set_queue_attributes,
            "PurgeQueue": self._purge_queue,
            "SendMessage": self._send_message,
            "SendMessageBatch": self._send_message_batch,
            "ReceiveMessage": self._receive_message,
            "DeleteMessage": self._delete_message,
            "DeleteMessageBatch": self._delete_message_batch,
            "ChangeMessageVisibility": self._change_message_visibility,
            "ChangeMessageVisibilityBatch": self._change_message_visibility_batch,
            "TagQueue": self._tag_queue,
            "UntagQueue": self._untag_queue,
            "ListQueueTags": self._list_queue_tags,
            "ListDeadLetterSourceQueues": self._list_dead_letter_source_queues,
        }

    # the edge -----------------------------------------------------------------------
    @staticmethod
    def accepts(request: Request) -> bool:
        """Whether ``request`` is for this API (an SQS target, or SQS's query protocol)."""
        target = request.headers.get("x-amz-target")
        if target is not None:
            return target.startswith(sqs_wire.TARGET_PREFIX)
        return request.method == "POST" and sqs_wire.is_query_protocol(request.headers, request.body)

    def too_large(self, request: Request, limit: int) -> LambdaApiError:
        """The error of a request whose body was over ``limit`` (and was dropped unread)."""
        operation = json_protocol.operation_for_target(
            service_model("sqs"), request.headers.get("x-amz-target", ""))
        name = operation.name if operation is not None else "SQS"
        return RequestEntityTooLargeException(
            f"Request must be smaller than {limit} bytes for the {name} operation")

    def send_error(self, responder: Responder, error: LambdaApiError, request_id: str) -> None:
        responder.send(*sqs_wire.error_response(error, request_id))

    def handle(self, request: Request, responder: Responder, scope: Scope, principal: Principal,
               request_id: str) -> None:
        """Serve one authenticated request; the response is sent when the operation ends
        (a long poll ends up to 20 s later). Legal on the event loop's thread only."""
        if "x-amz-target" not in request.headers:
            responder.send(*sqs_wire.query_protocol_refusal(request_id))
            return
        try:
            operation = json_protocol.operation_for_target(service_model("sqs"),
                                                           request.headers["x-amz-target"])
            if operation is None:
                raise UnsupportedOperation(
                    f"{request.headers['x-amz-target']} is not an operation of the SQS API")
            run = self._operations.get(operation.name)
            if run is None:
                raise UnsupportedOperation(f"strato does not offer the SQS operation {operation.name}")
            params = json_protocol.parse_request(operation, request.body)
            for member in operation.input_shape.required_members if operation.input_shape else ():
                if params.get(member) is None:
                    raise MissingParameter.named(member)
            self._authorize(principal, operation.name, params, scope)
        except LambdaApiError as error:
            self.send_error(responder, error, request_id)
            return
        host = request.headers.get("host", "127.0.0.1")
        call = Call(params, scope, f"http://{host}", principal.access_key_id or self._account)
        task = asyncio.ensure_future(self._serve(operation, run, call, responder, request_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, operation: OperationModel, run: Operation, call: Call,
                     responder: Responder, request_id: str) -> None:
        try:
            response = json_protocol.serialize_response(operation, await run(call))
        except LambdaApiError as error:
            self.send_error(responder, error, request_id)
            return
        except Exception:
            log.exception("error in SQS %s", operation.name)
            self.send_error(responder, ServiceException("Internal error"), request_id)
            return
        responder.send(response.status, [*response.headers, ("x-amzn-RequestId", request_id)],
                       response.body)

    def _authorize(self, principal: Principal, operation: str, params: dict[str, Any],
                   scope: Scope) -> None:
        if self._authorizer is None:
            return
        name = params.get("QueueName")
        if isinstance(params.get("QueueUrl"), str):
            address = q.parse_queue_url(params["QueueUrl"])
            name = address.name if address is not None else None
        resource = q.queue_arn(scope.region, self._account, name) if isinstance(name, str) else "*"
        self._authorizer(principal, f"sqs:{operation}", resource)

    def _queue_name(self, call: Call) -> str:
        """The queue ``QueueUrl`` names; QueueDoesNotExist for another account's queue."""
        url = call.params["QueueUrl"]
        address = q.parse_queue_url(url)
        if address is None:
            raise InvalidAddress(f"The address {url} is not valid for this endpoint.")
        if address.account is not None and address.account != self._account:
            raise QueueDoesNotExist()
        return address.name

    def _url(self, call: Call, name: str) -> str:
        return q.queue_url(call.base_url, self._account, name)

    # queues -------------------------------------------------------------------------
    async def _create_queue(self, call: Call) -> dict[str, Any]:
        queue = await self._service.create_queue(
            call.params["QueueName"], call.params.get("Attributes") or {}, call.params.get("tags"))
        return {"QueueUrl": self._url(call, queue.name)}

    async def _get_queue_url(self, call: Call) -> dict[str, Any]:
        owner = call.params.get("QueueOwnerAWSAccountId")
        if owner is not None and owner != self._account:
            raise QueueDoesNotExist()
        queue = await self._service.get_queue(call.params["QueueName"])
        return {"QueueUrl": self._url(call, queue.name)}

    async def _list_queues(self, call: Call) -> dict[str, Any]:
        names, token = await self._service.list_queues(
            call.params.get("QueueNamePrefix") or "", max_results=call.params.get("MaxResults"),
            next_token=call.params.get("NextToken"))
        return {"QueueUrls": [self._url(call, n) for n in names] or None, "NextToken": token}

    async def _delete_queue(self, call: Call) -> dict[str, Any]:
        await self._service.delete_queue(self._queue_name(call))
        return {}

    async def _get_queue_attributes(self, call: Call) -> dict[str, Any]:
        attributes = await self._service.get_attributes(
            self._queue_name(call), call.params.get("AttributeNames") or [], call.scope.region)
        return {"Attributes": attributes or None}

    async def _set_queue_attributes(self, call: Call) -> dict[str, Any]:
        await self._service.set_attributes(self._queue_name(call), call.params["Attributes"])
        return {}

    async def _purge_queue(self, call: Call) -> dict[str, Any]:
        await self._service.purge(self._queue_name(call))
        return {}

    async def _tag_queue(self, call: Call) -> dict[str, Any]:
        await self._service.tag(self._queue_name(call), call.params["Tags"])
        return {}

    async def _untag_queue(self, call: Call) -> dict[str, Any]:
        await self._service.untag(self._queue_name(call), call.params["TagKeys"])
        return {}

    async def _list_queue_tags(self, call: Call) -> dict[str, Any]:
        return {"Tags": await self._service.tags(self._queue_name(call)) or None}

    async def _list_dead_letter_source_queues(self, call: Call) -> dict[str, Any]:
        names = await self._service.dead_letter_sources(self._queue_name(call))
        return {"queueUrls": [self._url(call, n) for n in names]}

    # messages -----------------------------------------------------------------------
    @staticmethod
    def _send_request(entry: dict[str, Any]) -> SendRequest:
        return SendRequest(
            body=entry.get("MessageBody") or "",
            delay_s=entry.get("DelaySeconds"),
            attributes=sqs_wire.message_attributes(entry.get("MessageAttributes")),
            system_attributes=sqs_wire.message_attributes(entry.get("MessageSystemAttributes")),
            group_id=entry.get("MessageGroupId"),
            deduplication_id=entry.get("MessageDeduplicationId"),
        )

    @staticmethod
    def _sent(request: SendRequest, sent: q.Sent) -> dict[str, Any]:
        return {
            "MessageId": sent.message_id,
            "MD5OfMessageBody": rules.md5_of_body(request.body),
            "MD5OfMessageAttributes": rules.md5_of_attributes(request.attributes),
            "MD5OfMessageSystemAttributes": rules.md5_of_attributes(request.system_attributes),
            "SequenceNumber": sent.sequence_number,
        }

    async def _send_message(self, call: Call) -> dict[str, Any]:
        request = self._send_request(call.params)
        outcome = (await self._service.send(self._queue_name(call), [request],
                                            sender_id=call.sender_id))[0]
        if isinstance(outcome, SqsError):
            raise outcome
        return self._sent(request, outcome)

    async def _send_message_batch(self, call: Call) -> dict[str, Any]:
        entries = call.params["Entries"]
        check_batch("SendMessageBatchRequestEntry", [e.get("Id", "") for e in entries])
        requests: list[SendRequest | SqsError] = []
        for entry in entries:
            try:
                requests.append(self._send_request(entry))
            except SqsError as error:
                requests.append(error)
        valid = [r for r in requests if isinstance(r, SendRequest)]
        outcomes = iter(await self._service.send(self._queue_name(call), valid,
                                                 sender_id=call.sender_id, batch=True))
        successful, failed = [], []
        for entry, request in zip(entries, requests, strict=True):
            outcome = next(outcomes) if isinstance(request, SendRequest) else request
            if isinstance(outcome, SqsError):
                failed.append(sqs_wire.batch_failure(entry["Id"], outcome))
            else:
                assert isinstance(request, SendRequest)
                successful.append({"Id": entry["Id"], **self._sent(request, outcome)})
        return {"Successful": successful, "Failed": failed}

    async def _receive_message(self, call: Call) -> dict[str, Any]:
        params = call.params
        max_messages = params.get("MaxNumberOfMessages")
        request = q.ReceiveRequest(
            max_messages=1 if max_messages is None else max_messages,
            visibility_timeout_s=params.get("VisibilityTimeout"),
            wait_s=params.get("WaitTimeSeconds"),
        )
        deliveries = await self._service.receive(self._queue_name(call), request)
        names = rules.system_attribute_names([*(params.get("AttributeNames") or []),
                                        *(params.get("MessageSystemAttributeNames") or [])])
        wanted = params.get("MessageAttributeNames") or []
        messages = []
        for delivery in deliveries:
            message = delivery.message
            chosen = rules.select_message_attributes(message.attributes, wanted)
            messages.append({
                "MessageId": message.message_id,
                "ReceiptHandle": delivery.receipt_handle,
                "MD5OfBody": message.md5_of_body,
                "Body": message.body,
                "Attributes": rules.system_attributes(delivery, names) or None,
                "MD5OfMessageAttributes": rules.md5_of_attributes(chosen),
                "MessageAttributes": sqs_wire.wire_attributes(chosen) or None,
            })
        return {"Messages": messages or None}

    async def _delete_message(self, call: Call) -> dict[str, Any]:
        outcome = (await self._service.delete(self._queue_name(call),
                                              [call.params["ReceiptHandle"]]))[0]
        if outcome is not None:
            raise outcome
        return {}

    async def _delete_message_batch(self, call: Call) -> dict[str, Any]:
        entries = call.params["Entries"]
        check_batch("DeleteMessageBatchRequestEntry", [e.get("Id", "") for e in entries])
        outcomes = await self._service.delete(self._queue_name(call),
                                              [e.get("ReceiptHandle", "") for e in entries])
        return self._batch_result(entries, outcomes)

    async def _change_message_visibility(self, call: Call) -> dict[str, Any]:
        outcome = (await self._service.change_visibility(
            self._queue_name(call),
            [(call.params["ReceiptHandle"], call.params["VisibilityTimeout"])]))[0]
        if outcome is not None:
            raise outcome
        return {}

    async def _change_message_visibility_batch(self, call: Call) -> dict[str, Any]:
        entries = call.params["Entries"]
        check_batch("ChangeMessageVisibilityBatchRequestEntry", [e.get("Id", "") for e in entries])
        outcomes = await self._service.change_visibility(
            self._queue_name(call),
            [(e.get("ReceiptHandle", ""), e.get("VisibilityTimeout") or 0) for e in entries])
        return self._batch_result(entries, outcomes)

    @staticmethod
    def _batch_result(entries: list[dict[str, Any]], outcomes: list[SqsError | None]) -> dict[str, Any]:
        successful, failed = [], []
        for entry, outcome in zip(entries, outcomes, strict=True):
            if outcome is None:
                successful.append({"Id": entry["Id"]})
            else:
                failed.append(sqs_wire.batch_failure(entry["Id"], outcome))
        return {"Successful": successful, "Failed": failed}
