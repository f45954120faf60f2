import fs from "node:fs";
import type http from "node:http";
import path from "node:path";
import compression from "compression";
import sirv from "sirv";

/**
 * How the engine's static server answers (static-server.ts runs it): sirv serves the files it
 * indexed at start (a path outside them, `..` included, is not found), with ETags and 304s; the
 * compression middleware gzips or brotli-compresses by Accept-Encoding. Hashed build assets are
 * cached for a year, everything else is revalidated each time (index.html must be, or a new
 * release would not be seen). A single-page app answers unknown routes with index.html; a
 * missing file (a path with an extension) is a real 404, with the site's 404.html when it has one.
 */
export function staticHandler(root: string, options: { spa: boolean }): http.RequestListener {
  const compress = compression({ threshold: 512 });
  const serve = sirv(root, {
    dev: false,
    etag: true,
    single: options.spa,
    dotfiles: false,
    setHeaders: (res, pathname) => res.setHeader("Cache-Control", isHashedAsset(pathname) ? "public, max-age=31536000, immutable" : "no-cache"),
  });
  const notFoundPage = path.join(root, "404.html");
  return (req, res) => {
    compress(req as never, res as never, () => {
      serve(req, res, () => {
        const page = fs.existsSync(notFoundPage) ? fs.readFileSync(notFoundPage) : null;
        res.writeHead(404, { "content-type": page ? "text/html; charset=utf-8" : "text/plain", "cache-control": "no-cache" });
        res.end(page ?? "not found\n");
      });
    });
  };
}

/**
 * A file name carrying a content hash, as Vite (`index-BdX3k2aL.js`), Create React App
 * (`main.3f2a1b9c.js`), Angular (`main-HJ4GZTQL.js`), Astro and Gatsby write them: before the
 * extension (and webpack's `.chunk`), a token of at least 8 letters and digits with a digit (so
 * `jquery.slimmest.js` is not taken for one), or Rollup's, Vite's and esbuild's 8 characters of
 * URL-safe base64 or base32, which a quarter of the time hold no digit (create-vite's React app
 * builds `index-CwOdOtxP.js`): those have a capital letter past their first character (so
 * `app-Settings.js` is not one). Such a file never changes under its name.
 */
export function isHashedAsset(pathname: string): boolean {
  const name = pathname.slice(pathname.lastIndexOf("/") + 1);
  if (name.endsWith(".html")) return false;
  if (/[.-](?=[A-Za-z0-9_]*\d)[A-Za-z0-9_]{8,}(\.chunk)?\.[a-z0-9]+(\.map)?$/.test(name)) return true;
  const token = /[.-]([A-Za-z0-9_-]{8})\.[a-z0-9]+(\.map)?$/.exec(name)?.[1];
  return token !== undefined && /[A-Z]/.test(token.slice(1));
}
