import { execFile } from "node:child_process";
import fsp from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { StepError } from "../runtime";
import type { PythonRequest } from "../plans/python";

const execFileAsync = promisify(execFile);

/**
 * The Python interpreter of an app (issue 14): unlike Node, CPython has no builds the engine can
 * download here (python.org publishes sources and Windows/macOS installers; the relocatable Linux
 * builds live on GitHub, out of reach), so the engine uses the interpreters of its own host: every
 * `python3.X` on its PATH and in /usr/bin and /usr/local/bin that every user may run (not one
 * under /root, as pyenv's are for root: a service's user could not). A request (`3.11`, `3.11.9`) takes
 * the highest that matches; none is a build error naming the request and what the host has.
 */

/** `path`: the interpreter's own executable (a version manager's shim resolved); `prefix`: its installation, which the sandbox must show. */
export type PythonInterpreter = { path: string; version: string; prefix: string };

/** Whether interpreter version `version` (`3.11.7`) is one `request` (`3`, `3.11`, `3.11.7`) asks for. */
export function matchesRequest(version: string, request: Pick<PythonRequest, "parts">): boolean {
  const parts = version.split(".").map(Number);
  return request.parts.every((part, index) => parts[index] === part);
}

function compareVersions(a: string, b: string): number {
  const left = a.split(".").map(Number);
  const right = b.split(".").map(Number);
  for (let index = 0; index < 3; index++) if ((left[index] ?? 0) !== (right[index] ?? 0)) return (left[index] ?? 0) - (right[index] ?? 0);
  return 0;
}

/** The interpreter to use among `found`: the highest matching `request`, or the host's `python3` without one. */
export function chooseInterpreter(request: PythonRequest | null, found: PythonInterpreter[], python3: PythonInterpreter | null): PythonInterpreter | null {
  if (!request) return python3;
  const matching = found.filter((interpreter) => matchesRequest(interpreter.version, request));
  return matching.sort((a, b) => compareVersions(b.version, a.version))[0] ?? null;
}

/** What the interpreter says of itself: pyenv's shims are scripts that run another file, which a sandbox would not show. */
async function describe(file: string): Promise<PythonInterpreter | null> {
  try {
    const script = "import sys; print('.'.join(map(str, sys.version_info[:3]))); print(sys.executable); print(sys.base_prefix)";
    const { stdout } = await execFileAsync(file, ["-c", script], { timeout: 10_000 });
    const [version, executable, prefix] = stdout.trim().split("\n");
    if (!version || !/^\d+\.\d+\.\d+$/.test(version) || !executable || !prefix) return null;
    return { path: executable, version, prefix };
  } catch {
    // Not runnable (a broken link, another architecture): not an interpreter the engine can offer.
    return null;
  }
}

/**
 * Whether every user may run `file`: builds and releases run as the service's own user, who
 * reaches nothing under a home such as /root (where pyenv installs), whatever the sandbox shows.
 */
async function reachableByAll(file: string): Promise<boolean> {
  const stat = await fsp.stat(file).catch(() => null);
  if (!stat || (stat.mode & 0o005) !== 0o005) return false;
  for (let dir = path.dirname(file); ; dir = path.dirname(dir)) {
    const mode = (await fsp.stat(dir).catch(() => null))?.mode ?? 0;
    if ((mode & 0o001) === 0) return false;
    if (dir === "/") return true;
  }
}

export class PythonInterpreters {
  /** `searchPath`: the engine's PATH (engineBaseEnv). */
  constructor(private readonly searchPath: string) {}

  /** Every `python3.X` of the host that services may run (one per real file), with its version; and the first `python3` of them. */
  async list(): Promise<{ found: PythonInterpreter[]; python3: PythonInterpreter | null }> {
    const dirs = [...new Set([...this.searchPath.split(":").filter((dir) => path.isAbsolute(dir)), "/usr/local/bin", "/usr/bin"])];
    const seen = new Set<string>();
    const found: PythonInterpreter[] = [];
    let python3: PythonInterpreter | null = null;
    for (const dir of dirs) {
      const names = await fsp.readdir(dir).catch(() => [] as string[]);
      for (const name of names.filter((entry) => /^python3(\.\d+)?$/.test(entry)).sort()) {
        const interpreter = await describe(path.join(dir, name));
        if (!interpreter || !(await reachableByAll(interpreter.path))) continue;
        if (name === "python3" && !python3) python3 = interpreter;
        const real = await fsp.realpath(interpreter.path).catch(() => interpreter.path);
        if (seen.has(real)) continue;
        seen.add(real);
        found.push(interpreter);
      }
    }
    return { found, python3 };
  }

  /** The interpreter for `request`; a StepError naming the request and the versions the host has when nothing matches. */
  async provide(request: PythonRequest | null): Promise<{ interpreter: PythonInterpreter; description: string }> {
    const { found, python3 } = await this.list();
    const interpreter = chooseInterpreter(request, found, python3);
    const available = [...new Set(found.map((each) => each.version))].sort(compareVersions).join(", ") || "none";
    if (!interpreter) {
      if (!request) throw new StepError("no python3 on the engine host's PATH: install Python 3 there (the engine does not download interpreters)");
      throw new StepError(
        `no Python on the engine's host matches ${request.source} "${request.spec}" (it has ${available}; the engine uses the host's interpreters and cannot download others)`,
      );
    }
    const why = request ? `from ${request.source} "${request.spec}"` : "no version named: the host's python3";
    return { interpreter, description: `Python ${interpreter.version} (${why}): ${interpreter.path}, of the engine's host (it has ${available})` };
  }
}
