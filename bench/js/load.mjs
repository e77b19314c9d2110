// The load client of bench/rest.py: autocannon (pinned in package-lock.json), driven
// programmatically so that each request can name a different row.
//
//   node bench/js/load.mjs '{"url": "http://127.0.0.1:PORT", "path": "/api/todos?select=*&id=eq.{id}",
//                            "ids": 10000, "connections": 50, "seconds": 10, "warmup": 2}'
//
// "{id}" in the path is replaced, per request, by a random integer in 1..ids; "method",
// "body" and "headers" are sent as given. After an unmeasured warm-up of "warmup"
// seconds, one measured run of "seconds"; prints one JSON line: 2xx responses per
// second, latency percentiles in ms, and every status seen.

import autocannon from "autocannon";

const spec = JSON.parse(process.argv[2] ?? "{}");
if (!spec.url || !spec.path) {
  console.error("usage: node bench/js/load.mjs '{\"url\": ..., \"path\": ..., \"seconds\": ...}'");
  process.exit(2);
}
const ids = spec.ids ?? 1;

function run(seconds) {
  return autocannon({
    url: spec.url,
    connections: spec.connections ?? 50,
    duration: seconds,
    requests: [
      {
        method: spec.method ?? "GET",
        headers: spec.headers ?? {},
        body: spec.body,
        setupRequest: (request) => {
          request.path = spec.path.replaceAll("{id}", String(1 + Math.floor(Math.random() * ids)));
          return request;
        },
      },
    ],
  });
}

if (spec.warmup > 0) await run(spec.warmup);
const result = await run(spec.seconds ?? 10);
const statuses = Object.fromEntries(Object.entries(result.statusCodeStats ?? {}).map(([code, s]) => [code, s.count]));
const ok = Object.entries(statuses)
  .filter(([code]) => code.startsWith("2"))
  .reduce((sum, [, count]) => sum + Number(count), 0);
console.log(
  JSON.stringify({
    rps: ok / result.duration,
    p50_ms: result.latency.p50,
    p99_ms: result.latency.p99,
    statuses,
    errors: result.errors,
    timeouts: result.timeouts,
    seconds: result.duration,
  }),
);
