/** Where the skip link lands: every page's <main> carries this id. */
export const MAIN_CONTENT_ID = "main-content";

/**
 * "Skip to content": the first thing a keyboard reaches on every page, hidden until focused, so
 * that keyboard and screen-reader users need not tab through the header and navigation.
 */
export function SkipLink() {
  return (
    <a href={`#${MAIN_CONTENT_ID}`} className="skip-link">
      Skip to content
    </a>
  );
}
