import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { and, eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { services as servicesTable, variables } from "../server/db/schema";
import { cipherFor } from "../server/secrets/organization-cipher";
import { variableContext } from "../server/variables/variables";
import type { Env } from "./config";
import { runCli } from "./main";
import { startCliHarness, type CliHarness, type CliResult } from "./test-harness";

/**
 * Secrets reach the CLI from standard input or a file, never as arguments (which every user of
 * the host sees in ps): variables, .env files, API and engine tokens, repository tokens.
 */
let h: CliHarness;
let dir: string;
let environmentId: string;
const TOKEN = "ghp_cl1T0kenFromStdin5521";

beforeAll(async () => {
  h = await startCliHarness();
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "slipway-cli-secrets-"));
  expect(await h.cli(["login", "--url", h.url, "--token-stdin"], { stdin: `${h.ownerToken}\n` })).toMatchObject({ code: 0, stderr: "" });
  expect((await h.cli(["project", "create", "vault"])).code).toBe(0);
  const env = await h.cli(["env", "create", "vault/dev", "--json"]);
  environmentId = (JSON.parse(env.stdout) as { id: string }).id;
});
afterAll(() => fs.rm(dir, { recursive: true, force: true }));

function expectUsage(result: CliResult, message: string) {
  expect(result).toMatchObject({ code: 2, stdout: "", stderr: `error: ${message}\n` });
}

/** A variable's stored value, decrypted: what the engine will get. */
async function storedValue(key: string) {
  const [row] = await h.services.db
    .select()
    .from(variables)
    .where(and(eq(variables.targetId, environmentId), eq(variables.key, key)));
  const cipher = await cipherFor(h.services.db, h.services.keyring, h.org.organizationId);
  return { secret: row!.secret, value: cipher.decrypt(row!.encryptedValue, variableContext(row!.scope, row!.targetId, row!.key)) };
}

describe("secrets from standard input and files", () => {
  it("logs in with a token read from standard input, and refuses two ways at once", async () => {
    expect(JSON.parse(await fs.readFile(h.configFile, "utf8"))).toEqual({ url: h.url, token: h.ownerToken });
    expectUsage(await h.cli(["login", "--url", h.url, "--token", "x", "--token-stdin"], { stdin: "y" }), "give --token or --token-stdin, not both");
    expectUsage(
      await h.cli(["login", "--url", h.url]),
      'give the API token: --token-stdin (printf %s "$TOKEN" | slipway login --url … --token-stdin) or --token',
    );
  });

  it("sets a secret variable from standard input, one trailing newline dropped", async () => {
    const set = await h.cli(["var", "set", "vault/dev", "STRIPE_KEY", "--secret-stdin"], { stdin: "sk_live_abc=def\n" });
    expect(set).toMatchObject({ code: 0, stdout: "Set secret STRIPE_KEY on vault/dev (ENVIRONMENT)\n", stderr: "" });
    expect(await storedValue("STRIPE_KEY")).toEqual({ secret: true, value: "sk_live_abc=def" });
    expect((await h.cli(["var", "list", "vault/dev"])).stdout).not.toContain("sk_live_abc");

    expectUsage(
      await h.cli(["var", "set", "vault/dev", "A=1", "--secret-stdin"], { stdin: "x" }),
      "--secret-stdin sets one variable: give its KEY alone, the value comes from standard input",
    );
    expectUsage(
      await h.cli(["var", "set", "vault/dev", "EMPTY", "--secret-stdin"], { stdin: "\n" }),
      'standard input was empty: pipe the value of EMPTY in, e.g. printf %s "$VALUE" | slipway …',
    );
  });

  it("imports a .env file as dotenv reads it, from a file or standard input", async () => {
    const file = path.join(dir, "prod.env");
    await fs.writeFile(
      file,
      ["# the database", 'DB_URL="postgres://u:p@db/app"', "export RETRIES=3", "MULTI='line one", "line two'", 'QUOTED="a # b" # note'].join("\n"),
    );
    const imported = await h.cli(["var", "import", "vault/dev", file]);
    expect(imported).toMatchObject({ code: 0, stdout: "Imported 4 variables on vault/dev: DB_URL, RETRIES, MULTI, QUOTED\n" });
    expect(await storedValue("DB_URL")).toEqual({ secret: false, value: "postgres://u:p@db/app" });
    expect(await storedValue("MULTI")).toEqual({ secret: false, value: "line one\nline two" });
    expect(await storedValue("QUOTED")).toEqual({ secret: false, value: "a # b" });

    const secrets = await h.cli(["var", "import", "vault/dev", "-", "--secret"], { stdin: "API_TOKEN=tok-from-pipe\n" });
    expect(secrets).toMatchObject({ code: 0, stdout: "Imported 1 secret on vault/dev: API_TOKEN\n" });
    expect(await storedValue("API_TOKEN")).toEqual({ secret: true, value: "tok-from-pipe" });
    expect((await h.cli(["var", "import", "vault/dev", path.join(dir, "missing.env")])).stderr).toBe(
      `error: cannot read the .env file from ${path.join(dir, "missing.env")}: ENOENT\n`,
    );
  });

  it("takes a repository's token from standard input and never prints it", async () => {
    const created = await h.cli(["service", "create", "vault/dev/web", "--git", "https://github.com/acme/private.git", "--git-token-stdin"], {
      stdin: `${TOKEN}\n`,
    });
    expect(created).toMatchObject({ code: 0, stderr: "" });
    // Saved unchecked (the harness's control plane does not check repositories): the default branch, whichever it is at deploy time.
    expect(created.stdout).toMatch(/^Created service vault\/dev\/web from https:\/\/github\.com\/acme\/private\.git \(default branch\) \(/);
    const listed = await h.cli(["service", "list", "vault/dev", "--json"]);
    expect(listed.stdout).not.toContain(TOKEN);
    expect(JSON.parse(listed.stdout)).toEqual([
      expect.objectContaining({
        config: expect.objectContaining({
          git: {
            url: "https://github.com/acme/private.git",
            rootDirectory: "",
            credentials: { username: "[secret]", password: "[secret]" },
          },
        }),
      }),
    ]);
    const [row] = await h.services.db.select().from(servicesTable).where(eq(servicesTable.environmentId, environmentId));
    expect(JSON.stringify(row!.config)).not.toContain(TOKEN);

    // A token inside --git still works, taken out of the URL, with a word about where it was seen.
    const inUrl = await h.cli(["service", "create", "vault/dev/api", "--git", `https://bot:${TOKEN}@github.com/acme/api.git`]);
    expect(inUrl.code).toBe(0);
    expect(inUrl.stdout).toMatch(/^Created service vault\/dev\/api from https:\/\/github\.com\/acme\/api\.git \(default branch\) \(/);
    expect(inUrl.stderr).toBe(
      "note: the token in this URL was visible to other users of this host (ps) while the command ran; pipe it to --git-token-stdin instead\n",
    );
    expect((await h.cli(["service", "list", "vault/dev"])).stdout).not.toContain(TOKEN);
    expectUsage(
      await h.cli(["service", "create", "vault/dev/x", "--image", "nginx", "--git-token-stdin"], { stdin: TOKEN }),
      "--git-token-stdin goes with --git <https URL>",
    );
  });

  it("connects a git provider with its API token from standard input", async () => {
    const connected = await h.cli(["git", "connect", "gitlab", "gl", "--api-token-stdin", "--json"], { stdin: "glpat-provider-token\n" });
    expect(connected.code).toBe(0);
    expect(JSON.parse(connected.stdout)).toMatchObject({ connection: { name: "gl", hasApiToken: true } });
  });
});

describe("clusters and engines", () => {
  it("shows and changes whether a cluster allows local repositories", async () => {
    expect((await h.cli(["cluster", "list"])).stdout).toMatch(/^local\s+local\s+localhost\s+disconnected\s+-\s+allowed\s/m);
    expect(await h.cli(["cluster", "update", "local", "--local-repositories", "off"])).toMatchObject({
      code: 0,
      stdout: "Cluster local does not allow local repositories: deployments of services built from one are refused\n",
    });
    expect((await h.cli(["cluster", "list"])).stdout).toMatch(/^local\s+local\s+localhost\s+disconnected\s+-\s+no\s/m);
    expect((await h.cli(["cluster", "update", "nowhere", "--local-repositories", "on"])).code).toBe(3);
  });

  it("starts an engine with its token from a file or the environment, never needing it as an argument", async () => {
    const tokenFile = path.join(dir, "engine-token");
    await fs.writeFile(tokenFile, "slw_eng_from-file\n", { mode: 0o600 });
    const started: Env[] = [];
    // In-process, as bin/slipway.js runs it, with the engine's start recorded instead of done.
    const run = async (args: string[], env: Env = {}) => {
      let stderr = "";
      const code = await runCli(["engine", "--url", "http://cp.example:3000", ...args], {
        stdout: { write: () => true },
        stderr: { write: (text: string) => (stderr += text) },
        env,
        startEngine: async (given) => void started.push(given),
      });
      return { code, stderr };
    };
    expect(await run(["--token-file", tokenFile, "--allow-local-repositories"])).toEqual({ code: 0, stderr: "" });
    expect(started.at(-1)).toMatchObject({ SLIPWAY_ENGINE_TOKEN: "slw_eng_from-file", SLIPWAY_ENGINE_ALLOW_LOCAL_REPOSITORIES: "1" });
    expect(await run([], { SLIPWAY_ENGINE_TOKEN: "slw_eng_from-env" })).toEqual({ code: 0, stderr: "" });
    expect(started.at(-1)).toMatchObject({ SLIPWAY_ENGINE_TOKEN: "slw_eng_from-env" });
    expect(started.at(-1)).not.toHaveProperty("SLIPWAY_ENGINE_ALLOW_LOCAL_REPOSITORIES");
    expect(await run([])).toEqual({ code: 2, stderr: "error: give the engine token: --token-file <file>, $SLIPWAY_ENGINE_TOKEN, or --token\n" });

    const created = await h.cli(["cluster", "create", "edge-local", "--allow-local-repositories"]);
    const token = created.stdout.split("\n")[2]!;
    expect(created.stdout).toContain(`\nSLIPWAY_ENGINE_TOKEN=${token} slipway engine --url ${h.url} --allow-local-repositories\n`);
  });
});
