"""Functions that call strato with the AWS SDK their runtime brings, configured by nothing but
their environment (``AWS_ENDPOINT_URL``, ``AWS_REGION``, the role session's credentials), as
a function on Lambda calls AWS: ``boto3`` in python3.11, ``@aws-sdk/client-sqs`` and
``@aws-sdk/client-sts`` in the newest nodejs runtime this host has.

Both answer the same events and return the same shapes, so one test covers both SDKs:

- ``{"op": "whoami"}``: STS GetCallerIdentity, ``{"identity": {"Arn", "UserId", "Account"}}``;
- ``{"op": "send", "queue_url", "count": n}``: ``n`` (default 1) SQS SendMessage calls at
  once (threads; ``Promise.all``) with bodies ``"0"`` … ``"n-1"``, ``{"sent": n}``;
- ``{"op": "send_twice", "queue_url", "pause": s}``: one SendMessage, ``s`` seconds of
  quiet, another, on the same client (and its pooled connection), ``{"sent": 2}``.

An SDK error is the result ``{"error": {"code", "status", "message"}}``. Every result also
carries the environment's ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_SESSION_TOKEN`` and ``AWS_ENDPOINT_URL``. The clients are made once, at INIT, as
functions usually make them, so warm invocations reuse their connections.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_zip
from tests.e2e.test_nodejs_runtime import available_runtime

SDKS = ("python", "node")
#: Importing boto3 takes about half a CPU-second: enough CPU (memory) that INIT is quick.
MEMORY_MB = 1024
TIMEOUT_S = 30

PYTHON = '''
import os, time
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.exceptions import ClientError

SQS = boto3.client("sqs")
STS = boto3.client("sts")
KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL")


def send(queue_url, body):
    SQS.send_message(QueueUrl=queue_url, MessageBody=body)


def run(event):
    if event["op"] == "whoami":
        who = STS.get_caller_identity()
        return {"identity": {k: who[k] for k in ("Arn", "UserId", "Account")}}
    if event["op"] == "send":
        count = event.get("count", 1)
        with ThreadPoolExecutor(count) as pool:
            list(pool.map(lambda i: send(event["queue_url"], str(i)), range(count)))
        return {"sent": count}
    send(event["queue_url"], "0")
    time.sleep(event["pause"])
    send(event["queue_url"], "1")
    return {"sent": 2}


def handler(event, context):
    try:
        result = run(event)
    except ClientError as error:
        result = {"error": {"code": error.response["Error"]["Code"],
                            "status": error.response["ResponseMetadata"]["HTTPStatusCode"],
                            "message": error.response["Error"]["Message"]}}
    return {**result, **{k: os.environ.get(k) for k in KEYS}}
'''

NODE = '''
const { SQSClient, SendMessageCommand } = require('@aws-sdk/client-sqs');
const { STSClient, GetCallerIdentityCommand } = require('@aws-sdk/client-sts');

const sqs = new SQSClient({});
const sts = new STSClient({});
const KEYS = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_ENDPOINT_URL'];

const send = (queueUrl, body) => sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: body }));

async function run(event) {
  if (event.op === 'whoami') {
    const who = await sts.send(new GetCallerIdentityCommand({}));
    return { identity: { Arn: who.Arn, UserId: who.UserId, Account: who.Account } };
  }
  if (event.op === 'send') {
    const count = event.count ?? 1;
    await Promise.all([...Array(count).keys()].map((i) => send(event.queue_url, String(i))));
    return { sent: count };
  }
  await send(event.queue_url, '0');
  await new Promise((resolve) => setTimeout(resolve, event.pause * 1000));
  await send(event.queue_url, '1');
  return { sent: 2 };
}

exports.handler = async (event) => {
  let result;
  try {
    result = await run(event);
  } catch (error) {
    if (!error.$metadata) throw error;
    result = { error: { code: error.Code ?? error.name, status: error.$metadata.httpStatusCode,
                        message: error.message } };
  }
  return { ...result, ...Object.fromEntries(KEYS.map((k) => [k, process.env[k]])) };
};
'''

NODE_SDK = Path(sys.prefix) / "strato-runtime-deps" / "nodejs" / "node_modules" / "@aws-sdk"
PYTHON_SDK = Path(sys.prefix) / "strato-runtime-deps" / "python" / "boto3"


def require_sdk(sdk: str) -> None:
    """Skip where ``make runtime-deps`` did not install ``sdk`` (fail in CI)."""
    where = PYTHON_SDK if sdk == "python" else NODE_SDK / "client-sqs"
    if not where.is_dir() and not os.environ.get("CI"):
        pytest.skip(f"the {sdk} AWS SDK is not installed (`make runtime-deps`)")


def create_sdk_function(client: Any, name: str, sdk: str, role: str, **kwargs: Any) -> None:
    """Create ``sdk``'s function as ``role`` and wait until it is Active."""
    require_sdk(sdk)
    if sdk == "python":
        runtime, handler, files = "python3.11", "app.handler", {"app.py": PYTHON}
    else:
        runtime, handler, files = available_runtime(), "index.handler", {"index.js": NODE}
    settings: dict[str, Any] = {"MemorySize": MEMORY_MB, "Timeout": TIMEOUT_S, **kwargs}
    client.create_function(FunctionName=name, Runtime=runtime, Role=role, Handler=handler,
                           Code={"ZipFile": make_zip(files)}, **settings)
    client.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
