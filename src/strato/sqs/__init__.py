"""Clients of the SQS queues strato sends to and polls: built-in queues and external endpoints."""
