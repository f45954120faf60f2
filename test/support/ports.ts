import { randomInt } from "node:crypto";
import { readFileSync } from "node:fs";
import getPort from "get-port";

/**
 * Ports for the servers a test starts itself (a platform, a router, PostgreSQL, Pebble...).
 *
 * Asking the kernel for a free port and binding it seconds later leaves a window in which any
 * other process's `listen(0)` may be handed that same port: a platform booting for the external
 * PostgreSQL test once answered with the upstream of the router test running beside it. These
 * ports come from below the kernel's ephemeral range, which `listen(0)` never hands out, in a
 * block of their own for each test worker running at once, so neither a server listening on
 * port 0 nor another file can take one between its choice and its bind. A port is reserved for
 * the life of the process: a platform that takes a minute to boot keeps it.
 */
export async function testPort(): Promise<number> {
  const { from, to } = workerBlock();
  return getPort({ port: fromRandomStart(from, to), reserve: true });
}

/**
 * The block's ports from a random one on, wrapping around. The files of a worker run one after
 * another, each in a new process that remembers none of the last one's reservations: taken in
 * order, every file would ask for the same first ports, which a process the last file started
 * may still be about to take again (a router the engine restarts on its port).
 */
function* fromRandomStart(from: number, to: number): Iterable<number> {
  const size = to - from + 1;
  const start = randomInt(size);
  for (let index = 0; index < size; index++) {
    const port = from + ((start + index) % size);
    if (!BROWSER_UNSAFE_PORTS.has(port)) yield port;
  }
}

/** Ports in the blocks that browsers refuse to load pages from (Chromium's restricted ports: ERR_UNSAFE_PORT). */
const BROWSER_UNSAFE_PORTS = new Set([10080]);

const FIRST_PORT = 10_000;
const BLOCKS = 24;

function workerBlock(): { from: number; to: number } {
  const size = Math.floor((ephemeralRangeStart() - FIRST_PORT) / BLOCKS);
  const from = FIRST_PORT + (workerIndex() % BLOCKS) * size;
  return { from, to: from + size - 1 };
}

/**
 * Vitest numbers its workers from 1 and Playwright from 0 (the two suites run one after the
 * other, but a developer may run both); global setups run in the main process, block 0.
 */
function workerIndex(): number {
  const vitest = Number(process.env.VITEST_POOL_ID);
  if (Number.isInteger(vitest) && vitest > 0) return vitest;
  const playwright = Number(process.env.TEST_PARALLEL_INDEX);
  if (Number.isInteger(playwright) && playwright >= 0) return BLOCKS / 2 + playwright;
  return 0;
}

function ephemeralRangeStart(): number {
  try {
    const [start] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/).map(Number);
    if (start! > FIRST_PORT + BLOCKS * 100) return start!;
  } catch {
    // Not Linux: the IANA dynamic range, which macOS and Windows use.
  }
  return 49_152;
}
