// graphile-worker peer: migrate, enqueue (addJob / addJobs) and worker.
//
// Speaks the same protocol as bench/python/peer_common.py:
//   node graphile_client.cjs migrate --database-url URL
//   node graphile_client.cjs enqueue --database-url URL --mode single|bulk|paced --count N
//        [--interval-ms MS] [--payload-bytes B]          -> prints {"seconds": ...}
//   node graphile_client.cjs worker --database-url URL --concurrency N [--sleep-ms MS]
//        [--fast] --out FILE                              -> runs until SIGTERM, then writes
//        {"records": [[start, end, enqueuedAt], ...]} to FILE (and creates FILE.ready
//        when its first handler has run)
// Times are wall-clock seconds, like Python's time.time(), at sub-millisecond resolution.
//
// --fast applies graphile-worker's documented high-throughput settings
// (worker.graphile.org/docs/performance): a local queue of 500 jobs, batched
// completions and failures (batch delay 0 ms), and a pool one larger than
// the concurrency. Without it every option keeps its default.
"use strict";

const fs = require("node:fs");
const { parseArgs } = require("node:util");
const { performance } = require("node:perf_hooks");
const { Logger, makeWorkerUtils, run, runMigrations } = require("graphile-worker");

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    "database-url": { type: "string" },
    mode: { type: "string", default: "single" },
    count: { type: "string", default: "0" },
    "interval-ms": { type: "string", default: "20" },
    "payload-bytes": { type: "string", default: "0" },
    concurrency: { type: "string", default: "10" },
    "sleep-ms": { type: "string", default: "0" },
    fast: { type: "boolean", default: false },
    out: { type: "string", default: "" },
  },
});
const command = positionals[0];
const connectionString = args["database-url"];
const count = Number(args.count);

const now = () => (performance.timeOrigin + performance.now()) / 1000;

// Per-job "Completed task" lines are logged at info level; every peer runs
// with per-job logging off, so only warnings and errors are printed.
const logger = new Logger(() => (level, message) => {
  if (level === "error" || level === "warning") console.error(`[${level}] ${message}`);
});

function payload(size) {
  if (size <= 0) return {};
  return { data: "x".repeat(Math.max(0, size - '{"data": ""}'.length)) };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function enqueue() {
  const utils = await makeWorkerUtils({ connectionString, logger });
  try {
    const body = payload(Number(args["payload-bytes"]));
    if (args.mode === "single") {
      const begin = performance.now();
      for (let i = 0; i < count; i++) await utils.addJob("noop", body);
      report((performance.now() - begin) / 1000);
    } else if (args.mode === "bulk") {
      const specs = Array.from({ length: count }, () => ({ identifier: "noop", payload: body }));
      const begin = performance.now();
      await utils.addJobs(specs);
      report((performance.now() - begin) / 1000);
    } else {
      const interval = Number(args["interval-ms"]);
      const begin = performance.now();
      for (let i = 0; i < count; i++) {
        await sleep(Math.max(0, begin + i * interval - performance.now()));
        await utils.addJob("noop", { t: now() });
      }
      report(0);
    }
  } finally {
    await utils.release();
  }
}

function report(seconds) {
  process.stdout.write(JSON.stringify({ seconds }) + "\n");
}

async function work() {
  const concurrency = Number(args.concurrency);
  const sleepMs = Number(args["sleep-ms"]);
  const records = [];
  const noop = async (body) => {
    const start = now();
    if (sleepMs > 0) await sleep(sleepMs);
    if (records.length === 0) fs.writeFileSync(`${args.out}.ready`, "");
    records.push([start, now(), body && typeof body.t === "number" ? body.t : null]);
  };
  const fast = args.fast
    ? {
        maxPoolSize: concurrency + 1,
        preset: {
          worker: { localQueue: { size: 500 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 },
        },
      }
    : {};
  // run() can resolve after the first jobs have already run, so the SIGTERM
  // handler goes in first and a stop that came early is applied on resolve.
  let runner = null;
  let stopRequested = false;
  const stop = () => runner.stop().catch((error) => console.error(error));
  process.on("SIGTERM", () => {
    if (stopRequested) return;
    stopRequested = true;
    if (runner) stop();
  });
  runner = await run({
    connectionString,
    concurrency,
    logger,
    noHandleSignals: true,
    taskList: { noop },
    ...fast,
  });
  if (stopRequested) stop();
  await runner.promise;
  fs.writeFileSync(args.out, JSON.stringify({ records }));
}

async function main() {
  if (command === "migrate") await runMigrations({ connectionString, logger });
  else if (command === "enqueue") await enqueue();
  else if (command === "worker") await work();
  else throw new Error(`unknown command ${command}`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
