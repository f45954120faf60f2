import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { KEEPALIVE_INTERVAL_MS, keepSessionAlive, type PageVisibility } from "./session-keepalive";

/**
 * The timing of the keepalive, on a fake clock: a tab is open for days. The renewal itself (the
 * whoami call renewing the cookie through the real API) is e2e/sign-out.spec.ts's.
 */
const HOUR = 60 * 60_000;

/** A page that can be hidden and shown, as the browser's `document` is. */
function fakePage(): PageVisibility & { show(): void; hide(): void } {
  const target = new EventTarget();
  const page = {
    hidden: false,
    addEventListener: target.addEventListener.bind(target),
    removeEventListener: target.removeEventListener.bind(target),
    show: () => {
      page.hidden = false;
      target.dispatchEvent(new Event("visibilitychange"));
    },
    hide: () => {
      page.hidden = true;
      target.dispatchEvent(new Event("visibilitychange"));
    },
  };
  return page as PageVisibility & { show(): void; hide(): void };
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe("an open tab's session keepalive", () => {
  it("renews once an hour while the tab is visible, counted from the page's load", () => {
    const renew = vi.fn();
    const keepalive = keepSessionAlive(renew, { page: fakePage() });
    keepalive.setActive(true);

    vi.advanceTimersByTime(HOUR - 1);
    expect(renew).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(renew).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(7 * 24 * HOUR);
    expect(renew).toHaveBeenCalledTimes(1 + 7 * 24);
    keepalive.stop();
    vi.advanceTimersByTime(HOUR);
    expect(renew).toHaveBeenCalledTimes(1 + 7 * 24);
    expect(KEEPALIVE_INTERVAL_MS).toBe(HOUR);
  });

  it("adds no load while hidden, and renews as soon as a tab hidden for longer than that is visible again", () => {
    const renew = vi.fn();
    const page = fakePage();
    const keepalive = keepSessionAlive(renew, { page });
    keepalive.setActive(true);

    vi.advanceTimersByTime(10 * 60_000);
    page.hide();
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(3 * 24 * HOUR);
    expect(renew).not.toHaveBeenCalled();

    page.show();
    vi.advanceTimersByTime(0);
    expect(renew).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(HOUR);
    expect(renew).toHaveBeenCalledTimes(2);
    keepalive.stop();
  });

  it("waits out the rest of the hour for a tab hidden briefly, and never renews twice within an hour", () => {
    const renew = vi.fn();
    const page = fakePage();
    const keepalive = keepSessionAlive(renew, { page });
    keepalive.setActive(true);

    vi.advanceTimersByTime(HOUR);
    expect(renew).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(20 * 60_000);
    page.hide();
    vi.advanceTimersByTime(5 * 60_000);
    page.show();
    page.show();
    vi.advanceTimersByTime(35 * 60_000 - 1);
    expect(renew).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(1);
    expect(renew).toHaveBeenCalledTimes(2);
    keepalive.stop();
  });

  it("renews only while the tab is signed in: not before its connection, not once its session ended", () => {
    const renew = vi.fn();
    const keepalive = keepSessionAlive(renew, { page: fakePage() });

    vi.advanceTimersByTime(2 * HOUR);
    expect(renew).not.toHaveBeenCalled();
    keepalive.setActive(true);
    vi.advanceTimersByTime(0);
    expect(renew).toHaveBeenCalledTimes(1);
    keepalive.setActive(false);
    vi.advanceTimersByTime(5 * HOUR);
    expect(renew).toHaveBeenCalledTimes(1);
    keepalive.stop();
  });

  it("refuses an interval that is not a positive number of milliseconds", () => {
    expect(() => keepSessionAlive(() => {}, { page: fakePage(), intervalMs: 0 })).toThrow(/positive number of milliseconds, not 0/);
  });
});
