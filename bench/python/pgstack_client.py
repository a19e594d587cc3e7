"""pgstack client side of the benchmark: enqueue one at a time, in bulk, or paced.

Run inside bench/.peers/venv-pgstack; see peer_common for the protocol.
"""

from __future__ import annotations

import time

from peer_common import paced, paced_payload, parse_args, payload, report_seconds

from pgstack.dbos import PgStackDBOS

ARGS = parse_args()


def main() -> None:
    queue = PgStackDBOS(connection_string=ARGS.database_url).queue
    body = payload(ARGS.payload_bytes)
    if ARGS.mode == "single":
        begin = time.perf_counter()
        for _ in range(ARGS.count):
            queue.enqueue("noop", body)
        report_seconds(time.perf_counter() - begin)
    elif ARGS.mode == "bulk":
        begin = time.perf_counter()
        queue.enqueue_many("noop", [body] * ARGS.count)
        report_seconds(time.perf_counter() - begin)
    else:
        for deadline in paced(ARGS.count, ARGS.interval_ms):
            time.sleep(max(0.0, deadline - time.perf_counter()))
            queue.enqueue("noop", paced_payload())
        report_seconds(0.0)


if __name__ == "__main__":
    main()
