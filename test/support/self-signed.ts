import { execFile } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";

export type SelfSigned = { certPath: string; keyPath: string; certPem: string; keyPem: string };

/**
 * A self-signed P-256 certificate and its key, made with openssl into `dir`: the first name is its
 * common name, every name and IP its subject alternative names (what TLS clients check).
 */
export async function selfSignedCertificate(options: { dir: string; names: string[]; ips?: string[]; days: number; file?: string }): Promise<SelfSigned> {
  const base = path.join(options.dir, options.file ?? `${options.names[0]}-${options.days}d`);
  const [certPath, keyPath] = [`${base}.crt`, `${base}.key`];
  const altNames = [...options.names.map((name) => `DNS:${name}`), ...(options.ips ?? []).map((ip) => `IP:${ip}`)].join(",");
  const args = ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", keyPath, "-out", certPath];
  await promisify(execFile)("openssl", [...args, "-days", String(options.days), "-subj", `/CN=${options.names[0]}`, "-addext", `subjectAltName=${altNames}`]);
  return { certPath, keyPath, certPem: await fs.readFile(certPath, "utf8"), keyPem: await fs.readFile(keyPath, "utf8") };
}
