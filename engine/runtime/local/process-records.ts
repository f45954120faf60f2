import fs from "node:fs";
import path from "node:path";
import { type Layout, releaseProcess, type ReleaseProcess } from "./layout";

/**
 * A record of every process the local runtime starts for a release, in the release's directory
 * (`processes/<pid>-<start time>.json`), written the moment the process exists and removed when it
 * is stopped. State files say which process is live; a record that no state tracks is a process
 * an engine killed mid-deploy or mid-restart left behind, which the next engine stops (issue 12:
 * untracked processes of one service ran through three engine restarts).
 */
export class ProcessRecords {
  constructor(private readonly paths: Layout) {}

  /**
   * Synchronous on purpose: called right after the spawn returns, before any await, so no engine
   * stops between a process existing and its record existing (short of a kill inside this call).
   */
  write(serviceId: string, proc: ReleaseProcess): void {
    const file = this.fileOf(serviceId, proc);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(proc), { mode: 0o600 });
    fs.renameSync(tmp, file);
  }

  remove(serviceId: string, proc: Pick<ReleaseProcess, "releaseId" | "pid" | "startTime">): void {
    fs.rmSync(this.fileOf(serviceId, proc), { force: true });
  }

  /** Every recorded process of the service, in any of its releases (unreadable records are dropped: they name nothing to stop). */
  list(serviceId: string): ReleaseProcess[] {
    const releasesDir = path.dirname(this.paths.releaseDir(serviceId, "_"));
    const found: ReleaseProcess[] = [];
    for (const releaseId of readdir(releasesDir)) {
      const dir = this.dirOf(serviceId, releaseId);
      for (const name of readdir(dir).filter((entry) => entry.endsWith(".json"))) {
        try {
          found.push(releaseProcess.parse(JSON.parse(fs.readFileSync(path.join(dir, name), "utf8"))));
        } catch {
          fs.rmSync(path.join(dir, name), { force: true });
        }
      }
    }
    return found;
  }

  private dirOf(serviceId: string, releaseId: string): string {
    return path.join(this.paths.releaseDir(serviceId, releaseId), "processes");
  }

  private fileOf(serviceId: string, proc: Pick<ReleaseProcess, "releaseId" | "pid" | "startTime">): string {
    return path.join(this.dirOf(serviceId, proc.releaseId), `${proc.pid}-${proc.startTime}.json`);
  }
}

function readdir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}
