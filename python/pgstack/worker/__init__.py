"""The worker: claims jobs, runs their handlers, and reports back, in small parts.

- ``runner``: the claim loop, dispatch to handlers, and the lifecycle (start, drain, stop).
- ``listener``: LISTEN for wake-ups and cancels, with a health check.
- ``completer``: finished and failed jobs written in batches.
- ``heartbeater``: a thread that extends leases, writes progress, rescues and prunes.
- ``links``: database connections that reconnect with backoff.
- ``held``: a job in the worker's hands, and its ``report_progress``.
"""
