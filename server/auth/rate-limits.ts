import { createHash } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { isIPv6 } from "node:net";
import type pg from "pg";
import { RateLimiterPostgres, RateLimiterRes } from "rate-limiter-flexible";

/**
 * Rate limits on guessing (issue 13): failed sign-ins per account and per address, bad API tokens
 * per address; and sign-ups per address, where anyone may sign up. The counters live in PostgreSQL (rate-limiter-flexible's RateLimiterPostgres, table
 * `rate_limits`), so every web process counts the same attempts.
 *
 * A sign-in is counted before its password is checked and given back when it succeeds: parallel
 * guesses cannot slip past the count, and a member who types the right password does not use up
 * anything. After a few failures every attempt waits a little longer before the password is
 * checked (whatever it turns out to be, so an attacker cannot stop waiting once the answer is
 * known); past the limit, attempts are refused with `Retry-After` without being checked. The
 * per-account limit is higher than the per-address one, so one address hammering an account does
 * not lock its owner out from elsewhere.
 * https://github.com/animir/node-rate-limiter-flexible/wiki/Overall-example#login-endpoint-protection
 */
export const AUTH_LIMITS = {
  signInPerAddress: { points: 20, duration: 15 * 60, blockDuration: 15 * 60 },
  signInPerAccount: { points: 50, duration: 60 * 60, blockDuration: 15 * 60 },
  /** Failures (per address or account, whichever has more) after which attempts are slowed. */
  slowAfter: 4,
  firstDelayMs: 100,
  maxDelayMs: 1_000,
  badTokensPerAddress: { points: 20, duration: 15 * 60, blockDuration: 15 * 60 },
  /** Accounts created by signing up (where it is open), per address: one host cannot mint thousands. */
  signUpsPerAddress: { points: 10, duration: 60 * 60, blockDuration: 60 * 60 },
} as const;

/** Refused for now: try again in this many seconds. */
export type Refusal = { retryAfterSeconds: number };
export type SignInAttempt = { refused: Refusal } | { refused: null; delayMs: number };

/** The address a request comes from: the connection's, or the last hop of `X-Forwarded-For` when a proxy in front is trusted to set it. */
export function clientAddress(req: IncomingMessage, trustProxy: boolean): string {
  const forwarded = trustProxy
    ? String(req.headers["x-forwarded-for"] ?? "")
        .split(",")
        .at(-1)
        ?.trim()
    : undefined;
  return forwarded || req.socket.remoteAddress || "unknown";
}

/**
 * The key of an address: IPv4 as it is (IPv4-mapped IPv6 included), IPv6 by its /64, which one
 * host usually holds whole (counting single IPv6 addresses would let it rotate through them).
 */
export function addressKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (!isIPv6(address)) return address;
  const [head = "", tail = ""] = address.toLowerCase().split("::");
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const groups = address.includes("::") ? [...left, ...Array<string>(8 - left.length - right.length).fill("0"), ...right] : left;
  return `${groups
    .slice(0, 4)
    .map((group) => group.replace(/^0+(?=.)/, ""))
    .join(":")}::/64`;
}

/** Accounts are counted by a hash of their email: the table holds no addresses of people. */
const accountKey = (email: string) => createHash("sha256").update(email.trim().toLowerCase()).digest("hex");

const retryAfter = (res: RateLimiterRes): Refusal => ({ retryAfterSeconds: Math.max(1, Math.ceil(res.msBeforeNext / 1000)) });

/** A consume that a refusal rejects with a RateLimiterRes: anything else (the database) is an error. */
async function consume(limiter: RateLimiterPostgres, key: string): Promise<RateLimiterRes | Refusal> {
  try {
    return await limiter.consume(key);
  } catch (rejection) {
    if (rejection instanceof RateLimiterRes) return retryAfter(rejection);
    throw rejection;
  }
}

export function createAuthLimits(pool: pg.Pool) {
  const limiter = (keyPrefix: string, limits: { points: number; duration: number; blockDuration: number }) =>
    new RateLimiterPostgres({ storeClient: pool, storeType: "pool", tableName: "rate_limits", tableCreated: true, keyPrefix, ...limits });
  const signInByAddress = limiter("sign-in-address", AUTH_LIMITS.signInPerAddress);
  const signInByAccount = limiter("sign-in-account", AUTH_LIMITS.signInPerAccount);
  const badTokensByAddress = limiter("bad-token-address", AUTH_LIMITS.badTokensPerAddress);
  const signUpsByAddress = limiter("sign-up-address", AUTH_LIMITS.signUpsPerAddress);

  return {
    /** Before a password is checked: counts the attempt, and says whether to refuse it or how long to wait first. */
    async signInAttempt(email: string, address: string): Promise<SignInAttempt> {
      const byAddress = await consume(signInByAddress, addressKey(address));
      if (!(byAddress instanceof RateLimiterRes)) return { refused: byAddress };
      const byAccount = await consume(signInByAccount, accountKey(email));
      if (!(byAccount instanceof RateLimiterRes)) return { refused: byAccount };
      const failures = Math.max(byAddress.consumedPoints, byAccount.consumedPoints) - 1;
      if (failures < AUTH_LIMITS.slowAfter) return { refused: null, delayMs: 0 };
      return { refused: null, delayMs: Math.min(AUTH_LIMITS.maxDelayMs, AUTH_LIMITS.firstDelayMs * 2 ** (failures - AUTH_LIMITS.slowAfter)) };
    },
    /** The right password: the attempt is given back. */
    async signInSucceeded(email: string, address: string): Promise<void> {
      await Promise.all([signInByAddress.reward(addressKey(address), 1), signInByAccount.reward(accountKey(email), 1)]);
    },
    /** Whether the address is refused API tokens for now (checked before the token is). */
    async tokensRefused(address: string): Promise<Refusal | null> {
      const res = await badTokensByAddress.get(addressKey(address));
      return res && res.consumedPoints > AUTH_LIMITS.badTokensPerAddress.points ? retryAfter(res) : null;
    },
    /** An unknown or revoked API token was presented. */
    async tokenFailed(address: string): Promise<void> {
      await consume(badTokensByAddress, addressKey(address));
    },
    /** Before an account is created by signing up: counts the attempt, or refuses it for now. */
    async signUpAttempt(address: string): Promise<Refusal | null> {
      const res = await consume(signUpsByAddress, addressKey(address));
      return res instanceof RateLimiterRes ? null : res;
    },
  };
}

export type AuthLimits = ReturnType<typeof createAuthLimits>;
