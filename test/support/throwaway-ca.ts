import { execFile } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";

const openssl = (args: string[]) => promisify(execFile)("openssl", args);

/**
 * A certificate authority made for one test, and a server certificate it signed for 127.0.0.1:
 * what a TLS-intercepting proxy of a corporate network presents, a CA no client trusts unless
 * told to. `caPath` is the CA's certificate alone (what NODE_EXTRA_CA_CERTS names).
 */
export async function throwawayCa(dir: string): Promise<{ caPath: string; cert: string; key: string }> {
  const file = (name: string) => path.join(dir, name);
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  await openssl(["req", "-x509", ...ec, "-keyout", file("ca.key"), "-out", file("ca.crt"), "-days", "2", "-subj", "/CN=Slipway test interception CA"]);
  await openssl(["req", ...ec, "-keyout", file("server.key"), "-out", file("server.csr"), "-subj", "/CN=127.0.0.1"]);
  await fs.writeFile(file("server.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n");
  const sign = ["x509", "-req", "-in", file("server.csr"), "-CA", file("ca.crt"), "-CAkey", file("ca.key"), "-CAcreateserial"];
  await openssl([...sign, "-days", "2", "-extfile", file("server.ext"), "-out", file("server.crt")]);
  // Readable by the service's user, as a CA file installed for every program is.
  await fs.chmod(file("ca.crt"), 0o644);
  return { caPath: file("ca.crt"), cert: await fs.readFile(file("server.crt"), "utf8"), key: await fs.readFile(file("server.key"), "utf8") };
}
