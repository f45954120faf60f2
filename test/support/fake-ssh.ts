import { execFile } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/**
 * An `ssh` for tests, first on the PATH git is given: no ssh server runs on these machines, and
 * ssh itself is not what the tests are about. It records each run (its arguments, and the mode,
 * owner-only directory and first line of the key file named by `IdentityFile`, while it exists),
 * then runs the command git asked the remote to run (`git-upload-pack '<path>'`) on this host, so
 * git's ssh transport works end to end against a bare repository's path:
 * `ssh://git@fake-host/<path to the bare repository>`.
 */
export type FakeSsh = {
  /** The directory to put first on PATH. */
  dir: string;
  /** The runs so far. */
  runs(): Promise<FakeSshRun[]>;
};

export type FakeSshRun = {
  args: string[];
  /** The `-o IdentityFile="…"` path, as ssh reads it (the quotes are ssh's, not part of the path). */
  identityFile: string | null;
  /** The key file's mode (octal, e.g. "600") and its directory's, seen while ssh ran; null without one. */
  keyMode: string | null;
  keyDirMode: string | null;
  keyFirstLine: string | null;
};

export async function createFakeSsh(root: string): Promise<FakeSsh> {
  const dir = path.join(root, "fake-ssh-bin");
  const log = path.join(root, "fake-ssh.log");
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(log, "");
  const script = `#!/bin/sh
log=${JSON.stringify(log)}
key=""
for arg in "$@"; do
  case "$arg" in IdentityFile=*) key=$(printf '%s' "$arg" | sed -e 's/^IdentityFile=//' -e 's/^"//' -e 's/"$//');; esac
done
{
  printf 'run\\n'
  for arg in "$@"; do printf 'arg %s\\n' "$arg"; done
  if [ -n "$key" ]; then
    printf 'identity %s\\n' "$key"
    printf 'keymode %s\\n' "$(stat -c %a "$key")"
    printf 'dirmode %s\\n' "$(stat -c %a "$(dirname "$key")")"
    printf 'keyline %s\\n' "$(head -n 1 "$key")"
  fi
} >> "$log"
for last in "$@"; do :; done
exec sh -c "$last"
`;
  await fs.writeFile(path.join(dir, "ssh"), script, { mode: 0o755 });
  return {
    dir,
    async runs() {
      const text = await fs.readFile(log, "utf8");
      return text
        .split("run\n")
        .filter(Boolean)
        .map((block) => {
          const lines = block.split("\n").filter(Boolean);
          const value = (name: string) => lines.find((line) => line.startsWith(`${name} `))?.slice(name.length + 1) ?? null;
          return {
            args: lines.filter((line) => line.startsWith("arg ")).map((line) => line.slice(4)),
            identityFile: value("identity"),
            keyMode: value("keymode"),
            keyDirMode: value("dirmode"),
            keyFirstLine: value("keyline"),
          };
        });
    },
  };
}

/** A fresh ed25519 key pair made by ssh-keygen, with or without a passphrase: the private key's text. */
export async function generateDeployKey(dir: string, name: string, passphrase = ""): Promise<string> {
  const file = path.join(dir, name);
  await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", passphrase, "-C", "slipway-test", "-f", file]);
  return fs.readFile(file, "utf8");
}
