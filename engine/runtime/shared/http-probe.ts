import http from "node:http";

/** One GET to a release on 127.0.0.1: its status code, or null when it does not answer within 2 s. */
export function httpStatus(port: number, requestPath: string): Promise<number | null> {
  return new Promise((resolve) => {
    const req = http.get({ host: "127.0.0.1", port, path: requestPath, timeout: 2_000, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? null);
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(null));
  });
}
