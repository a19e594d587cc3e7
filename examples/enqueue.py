"""Enqueue one job of each kind that examples/handlers.py runs; prints "<id> <job name>".

    DATABASE_URL=postgresql:///app python examples/enqueue.py

Then watch them: `pgstack dbos status`, `pgstack dbos list`, `pgstack dbos dead`.
Without DATABASE_URL it uses pgstack's embedded PostgreSQL.
"""

from __future__ import annotations

import uuid

from handlers import connect
from pgstack.dbos import PgStackDBOS


def main() -> None:
    run = uuid.uuid4().hex[:6]  # fresh keys: a second run does all the work again
    order_id = f"A-{run}"
    # Both use DATABASE_URL, else the embedded PostgreSQL.
    with PgStackDBOS() as dbos, connect() as conn:
        queue = dbos.queue
        # The order and its invoice job commit together, or neither does.
        with conn.transaction():
            conn.execute("insert into examples.orders (id) values (%s)", (order_id,))
            invoice = queue.enqueue("generate-invoice", {"orderId": order_id}, conn=conn)
        jobs = [
            ("send-welcome-email", {"email": "user@example.com", "name": "Jane Doe"}),
            ("import-csv", {"file": f"customers-{run}.csv", "rows": 1000}),
            ("send-order-confirmation", {"orderId": order_id}),
            ("send-order-confirmation", {"orderId": order_id}),  # the copy sends nothing
            ("flaky", {"key": run}),
            ("always-fails", {"key": run}),
        ]
        ids = [queue.enqueue(name, payload) for name, payload in jobs]
    print(invoice, "generate-invoice")
    for job_id, (name, _) in zip(ids, jobs, strict=True):
        print(job_id, name)


if __name__ == "__main__":
    main()
