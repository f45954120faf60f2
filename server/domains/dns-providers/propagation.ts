import dns from "node:dns";
import { setTimeout as sleep } from "node:timers/promises";

/**
 * Waits until the zone's authoritative server answers `value` among the TXT records at `name`:
 * the CA asks for the record once told to validate, and a provider's API may accept a change
 * before its servers publish it. Asking the authoritative server (not a recursive resolver)
 * avoids waiting out a cached negative answer.
 */
export async function waitForTxt(nameserver: string, name: string, value: string, waitMs: number): Promise<void> {
  const resolver = new dns.promises.Resolver({ timeout: 2_000, tries: 1 });
  resolver.setServers([nameserver]);
  const deadline = Date.now() + waitMs;
  let last = "no answer yet";
  for (;;) {
    try {
      const values = (await resolver.resolveTxt(name)).map((chunks) => chunks.join(""));
      if (values.includes(value)) return;
      last = `it answers ${values.length} other value${values.length === 1 ? "" : "s"}`;
    } catch (error) {
      last = `it answers ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`;
    }
    if (Date.now() >= deadline) break;
    await sleep(500);
  }
  throw new Error(`the TXT record at ${name} did not show on the zone's nameserver ${nameserver} within ${Math.round(waitMs / 1000)} s (${last})`);
}
