"""AWS Lambda's quotas, as documented in "Lambda quotas"
(https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html)."""

from __future__ import annotations

MEMORY_MIN_MB = 128
MEMORY_MAX_MB = 10_240
#: One full vCPU at this much memory; CPU share is proportional below and above it.
MEMORY_PER_VCPU_MB = 1_769

TIMEOUT_MIN_S = 1
TIMEOUT_MAX_S = 900
TIMEOUT_DEFAULT_S = 3
INIT_TIMEOUT_S = 10

EPHEMERAL_MIN_MB = 512
EPHEMERAL_MAX_MB = 10_240
EPHEMERAL_DEFAULT_MB = 512

#: Environment variables, measured as the JSON object AWS serialises them to.
ENVIRONMENT_MAX_BYTES = 4 * 1024

FUNCTION_NAME_MAX = 64
DESCRIPTION_MAX = 256

SYNC_PAYLOAD_MAX_BYTES = 6 * 1024 * 1024  # 6,291,456: request of a synchronous invoke
#: AWS measures the response slightly above 6 MiB: "Response payload size exceeded maximum
#: allowed payload size (6291556 bytes)."
SYNC_RESPONSE_MAX_BYTES = 6_291_556
ASYNC_PAYLOAD_MAX_BYTES = 1024 * 1024
LOG_TAIL_BYTES = 4 * 1024
#: A streamed response's soft limit (20 MiB), for callers that take it as a stream
#: (InvokeWithResponseStream, a RESPONSE_STREAM function URL); a caller that takes the whole
#: response (Invoke) keeps ``SYNC_RESPONSE_MAX_BYTES``.
#: https://docs.aws.amazon.com/lambda/latest/dg/configuration-response-streaming.html
STREAMING_RESPONSE_MAX_BYTES = 20 * 1024 * 1024

ZIPPED_CODE_MAX_BYTES = 50 * 1024 * 1024  # 52,428,800
UNZIPPED_CODE_MAX_BYTES = 250 * 1024 * 1024  # 262,144,000
#: The largest CreateFunction request AWS accepts (base64 of a 50 MB zip plus the rest).
CREATE_FUNCTION_REQUEST_MAX_BYTES = 70_167_211

ACCOUNT_CONCURRENCY_DEFAULT = 1_000
TOTAL_CODE_SIZE_MAX_BYTES = 80 * 1024 * 1024 * 1024  # 75 GB in AWS's console units
