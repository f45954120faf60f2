/**
 * How often an open, visible dashboard tab tells the API it is in use. The API renews a session
 * cookie once it is a day old (server/auth/sessions.ts: renewSessionCookie), so a session lasts 7
 * days from its last API call; a tab that only follows live updates (a log on a wall screen)
 * makes none by itself, and its session would end 7 days after the page loaded.
 */
export const KEEPALIVE_INTERVAL_MS = 60 * 60_000;

/** What the keepalive reads of the page: `document` in the browser. */
export type PageVisibility = Pick<Document, "hidden" | "addEventListener" | "removeEventListener">;

export type SessionKeepalive = {
  /** Whether the tab is signed in and following live updates (its socket is connected): only then is it kept alive. */
  setActive(active: boolean): void;
  stop(): void;
};

/**
 * Calls `renew` every `intervalMs` while the tab is active and visible, counted from the page's
 * load (its own API calls renewed it then). A hidden tab costs nothing: no timer runs, and one
 * that was hidden longer than the interval renews as soon as it is visible again.
 */
export function keepSessionAlive(
  renew: () => void,
  { page, intervalMs = KEEPALIVE_INTERVAL_MS, now = Date.now }: { page: PageVisibility; intervalMs?: number; now?: () => number },
): SessionKeepalive {
  if (!(intervalMs > 0)) throw new Error(`the keepalive interval must be a positive number of milliseconds, not ${intervalMs}`);
  let lastRenewal = now();
  let active = false;
  let timer: ReturnType<typeof setTimeout> | undefined;

  const schedule = () => {
    clearTimeout(timer);
    timer = undefined;
    if (!active || page.hidden) return;
    timer = setTimeout(renewNow, Math.max(0, lastRenewal + intervalMs - now()));
  };
  const renewNow = () => {
    lastRenewal = now();
    renew();
    schedule();
  };

  page.addEventListener("visibilitychange", schedule);
  return {
    setActive(value) {
      active = value;
      schedule();
    },
    stop() {
      active = false;
      clearTimeout(timer);
      page.removeEventListener("visibilitychange", schedule);
    },
  };
}
