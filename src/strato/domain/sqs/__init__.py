"""The built-in SQS queues' domain: queues, messages, attributes, sends, batches and their errors."""
