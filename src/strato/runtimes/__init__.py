"""The runtime clients strato ships for language runtimes, as files an environment runs
(not Python imported by strato): ``nodejs/`` is the Node.js runtime."""
