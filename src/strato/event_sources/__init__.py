"""Event source mappings: pollers that read queues and hand batches to functions."""
