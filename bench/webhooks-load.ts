/**
 * The load generator of bench/webhooks.ts, run as its own process so it does not share an event
 * loop with the server it measures. Reads its settings (JSON) from argv[2], drives the URL with
 * autocannon, giving each request its own delivery id, and prints the result as one JSON line.
 * Bounded in time; sends only to the 127.0.0.1 URL it is given.
 */
import autocannon from "autocannon";

/** `amount` requests in all (every answer awaited), or as many as fit in `durationSeconds`. */
type Settings = { url: string; body: string; headers: Record<string, string>; deliveryHeader: string; prefix: string; connections: number; amount?: number; durationSeconds: number };

async function main() {
  const settings = JSON.parse(process.argv[2] ?? "{}") as Settings;
  if (!new URL(settings.url).hostname.startsWith("127.")) throw new Error("the load generator only targets 127.0.0.1");
  let sequence = 0;
  const result = await autocannon({
    url: settings.url,
    method: "POST",
    connections: settings.connections,
    ...(settings.amount ? { amount: settings.amount } : { duration: settings.durationSeconds }),
    body: settings.body,
    headers: settings.headers,
    requests: [
      {
        setupRequest: (request) => {
          // The signature covers the body only, so one body is signed once; the delivery id varies.
          request.headers = { ...request.headers, [settings.deliveryHeader]: `${settings.prefix}-${sequence++}` };
          return request;
        },
      },
    ],
  });
  const statuses = Object.fromEntries(Object.entries(result.statusCodeStats ?? {}).map(([code, stats]) => [code, Number((stats as { count: number }).count)]));
  process.stdout.write(
    `${JSON.stringify({
      requests: result.requests.total,
      perSecond: result.requests.total / result.duration,
      p50: result.latency.p50,
      p99: result.latency.p99,
      max: result.latency.max,
      errors: result.errors,
      timeouts: result.timeouts,
      statuses,
      durationSeconds: result.duration,
    })}\n`,
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
