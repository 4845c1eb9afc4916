"""The Runtime API: how the runtime inside an execution environment talks to the platform.

Two transports carry the same operations (next event, response, error, INIT error) to an
``ExecutionEnvironment``: HTTP (``routes``), the API that AWS documents and every runtime
speaks, and the runtime channel (``channel``), a framed unix socket that strato's built-in
runtime uses instead, without HTTP parsing or TCP on either side. ``endpoints`` opens them
for each environment.
"""
