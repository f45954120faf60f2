import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { SERVICE_UID_BASE, SERVICE_UID_COUNT, ServiceUsers } from "./service-users";

describe("service users", () => {
  const dirs: string[] = [];
  const tempDir = () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "slipway-uids-"));
    dirs.push(dir);
    return dir;
  };
  afterEach(() => {
    for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  });

  const engineWith = (claimsDir: string) => {
    const home = tempDir();
    return { home, users: new ServiceUsers({ claimsDir, serviceDir: (id) => path.join(home, "services", id) }) };
  };

  it("gives each service a uid of its own in the range, the same one at every later call", () => {
    const claims = tempDir();
    const { users } = engineWith(claims);
    const a = users.userOf("a");
    const b = users.userOf("b");
    expect(a.uid).not.toBe(b.uid);
    expect(a.gid).toBe(a.uid);
    for (const { uid } of [a, b]) expect(uid >= SERVICE_UID_BASE && uid < SERVICE_UID_BASE + SERVICE_UID_COUNT).toBe(true);
    expect(users.userOf("a")).toEqual(a);
    expect(new ServiceUsers({ claimsDir: claims, serviceDir: (id) => path.join(engineWith(claims).home, id) }).userOf("a").uid).not.toBe(a.uid);
  });

  it("never gives two engines of one host the same uid, even for services of the same id", () => {
    const claims = tempDir();
    const first = engineWith(claims).users;
    const second = engineWith(claims).users;
    const uids = new Set<number>();
    for (let i = 0; i < 50; i++) {
      uids.add(first.userOf(`service-${i}`).uid);
      uids.add(second.userOf(`service-${i}`).uid);
    }
    expect(uids.size).toBe(100);
    expect(fs.readdirSync(claims)).toHaveLength(100);
  });

  it("frees a uid with its service, and takes over the claim of a service whose files are gone", () => {
    const claims = tempDir();
    const { home, users } = engineWith(claims);
    const freed = users.userOf("freed");
    users.free("freed");
    expect(fs.existsSync(path.join(claims, String(freed.uid)))).toBe(false);

    const stale = users.userOf("stale");
    fs.rmSync(path.join(home, "services", "stale"), { recursive: true });
    // Its directory is gone (an engine home deleted with its services): the claim is stale, and taken over.
    const claim = JSON.parse(fs.readFileSync(path.join(claims, String(stale.uid)), "utf8")) as { serviceDir: string };
    expect(fs.existsSync(claim.serviceDir)).toBe(false);
    const again = users.userOf("stale");
    expect(again.uid).toBe(stale.uid);
  });
});
