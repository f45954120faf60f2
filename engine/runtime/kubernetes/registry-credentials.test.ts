import type { V1Secret } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { registryCredentials } from "./registry-credentials";
import { defaultKubernetesSettings, type KubernetesSettings } from "./settings";
import { ScriptedKubeApi } from "./testing/scripted-api";

/** A `kubernetes.io/dockerconfigjson` Secret as https://kubernetes.io/docs/concepts/configuration/secret/#docker-config-secrets (v1.33) shows it. */
function pushSecret(auths: Record<string, unknown>): V1Secret {
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: "registry-push", namespace: "slipway-system" },
    type: "kubernetes.io/dockerconfigjson",
    data: { ".dockerconfigjson": Buffer.from(JSON.stringify({ auths })).toString("base64") },
  };
}

const settings: KubernetesSettings = { ...defaultKubernetesSettings, registry: "registry.example.com:5000/slipway", registrySecret: "registry-push" };

describe("the registry's push credentials for builds on the engine's host", () => {
  it("are read from the cluster's dockerconfigjson Secret, as username and password or as auth, under a host or a URL key", async () => {
    const api = new ScriptedKubeApi();
    api.seed(pushSecret({ "registry.example.com:5000": { username: "ci", password: "pa:ss" } }));
    expect(await registryCredentials(api, settings, "registry.example.com:5000")).toEqual({ username: "ci", password: "pa:ss" });

    api.seed(pushSecret({ "https://registry.example.com:5000/v1/": { auth: Buffer.from("robot:to:ken").toString("base64") } }));
    expect(await registryCredentials(api, settings, "registry.example.com:5000")).toEqual({ username: "robot", password: "to:ken" });

    api.seed(pushSecret({ "https://index.docker.io/v1/": { username: "hub", password: "hub-token" } }));
    expect(await registryCredentials(api, settings, "docker.io")).toEqual({ username: "hub", password: "hub-token" });
  });

  it("are none when the cluster names no Secret, and a clear error when the Secret is missing, malformed or has no entry for the registry", async () => {
    const api = new ScriptedKubeApi();
    expect(await registryCredentials(api, { ...settings, registrySecret: null }, "registry.example.com:5000")).toBeNull();
    await expect(registryCredentials(api, settings, "registry.example.com:5000")).rejects.toThrow(
      "the registry's credentials are missing: Secret slipway-system/registry-push does not exist or has no .dockerconfigjson",
    );
    api.seed(pushSecret({ "ghcr.io": { username: "other", password: "other-token" } }));
    await expect(registryCredentials(api, settings, "registry.example.com:5000")).rejects.toThrow(
      "Secret slipway-system/registry-push has no credentials for registry.example.com:5000",
    );
    const malformed: V1Secret = { ...pushSecret({}), data: { ".dockerconfigjson": Buffer.from("not json").toString("base64") } };
    api.seed(malformed);
    await expect(registryCredentials(api, settings, "registry.example.com:5000")).rejects.toThrow("is not a Docker config");
    api.seed(pushSecret({ "registry.example.com:5000": { auth: Buffer.from("no-colon").toString("base64") } }));
    await expect(registryCredentials(api, settings, "registry.example.com:5000")).rejects.toThrow(/has neither a username and password nor an auth/);
  });
});
