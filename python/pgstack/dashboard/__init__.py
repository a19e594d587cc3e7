"""A web dashboard for the queue: ``pgstack dashboard``.

Counts, throughput, workers, filterable job and dead-letter lists, a live page per job,
and the operator's actions (cancel, retry now, replay) behind a confirmation, a token
and CSRF protection. Standard library only: an HTTP server with a thread pool, pages
rendered on the server, a little JavaScript. ``--read-only`` hides the actions and
refuses them.
"""

from pgstack.dashboard.server import Dashboard, DashboardSettings

__all__ = ["Dashboard", "DashboardSettings"]
