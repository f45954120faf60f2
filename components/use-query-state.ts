"use client";

import { usePathname, useRouter, useSearchParams } from "next/navigation";
import { useCallback, useEffect, useMemo, useRef } from "react";

/**
 * State kept in the page's URL query, so a filtered view can be shared. A change replaces the
 * history entry (not one entry per keystroke). A navigation lands only after its transition, so
 * changes made in quick succession build on the last one asked for, not on a URL that has not
 * caught up yet (a level then a stream must keep both); a URL this did not write (back, forward,
 * a shared link) wins.
 */
export function useQueryState<State>(parse: (query: URLSearchParams) => State, serialize: (state: State) => string): [State, (change: Partial<State>) => void] {
  const params = useSearchParams();
  const router = useRouter();
  const pathname = usePathname();
  const current = params.toString();
  // parse and serialize should be module functions, so that the URL alone decides the state.
  const state = useMemo(() => parse(new URLSearchParams(current)), [current, parse]);
  const latest = useRef(state);
  const written = useRef(new Set<string>());
  useEffect(() => {
    if (current === serialize(latest.current)) written.current.clear();
    else if (!written.current.has(current)) {
      written.current.clear();
      latest.current = parse(new URLSearchParams(current));
    }
  }, [current, parse, serialize]);
  const setState = useCallback(
    (change: Partial<State>) => {
      latest.current = { ...latest.current, ...change };
      const query = serialize(latest.current);
      written.current.add(query);
      router.replace(query ? `${pathname}?${query}` : pathname, { scroll: false });
    },
    [router, pathname, serialize],
  );
  return [state, setState];
}
