"""The HTTP/1.1 transport that the API and every execution environment's Runtime API use:
parsing (httptools), keep-alive and pipelining, and the limits a hostile client meets."""
