"""Asynchronous delivery: durable events, the worker that runs them, retries, destinations."""
