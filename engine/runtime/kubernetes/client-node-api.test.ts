/**
 * What client-node-api.ts (the seam over @kubernetes/client-node) sends on the wire. A Node HTTP
 * server on 127.0.0.1 records each request and answers with bodies written from the Kubernetes
 * API reference; it implements none of the API's behaviour, and these tests claim only that the
 * requests are the ones the API documents (paths, verbs, content types, query parameters) and
 * that the answers are read as the API documents them.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";
import { KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clientNodeApi, loadKubeConfig } from "./client-node-api";
import type { KubeApi } from "./kube-api";

type Recorded = { method: string; url: string; contentType?: string; body: string; authorization?: string };
const requests: Recorded[] = [];
let server: http.Server;
let api: KubeApi;

/**
 * apps/v1's resource list, as discovery answers it.
 * Reference: https://kubernetes.io/docs/reference/using-api/api-concepts/#discovery-api and the
 * APIResourceList of https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/ (v1.33).
 */
const APPS_V1 = {
  kind: "APIResourceList",
  apiVersion: "v1",
  groupVersion: "apps/v1",
  resources: [
    {
      name: "deployments",
      singularName: "deployment",
      namespaced: true,
      kind: "Deployment",
      verbs: ["create", "delete", "get", "list", "patch", "update", "watch"],
    },
  ],
};

/**
 * metrics.k8s.io/v1beta1's resource list as a metrics server registers it: PodMetrics and
 * NodeMetrics, read-only (https://kubernetes.io/docs/reference/external-api/metrics.v1beta1/, v1.33).
 */
const METRICS_V1BETA1 = {
  kind: "APIResourceList",
  apiVersion: "v1",
  groupVersion: "metrics.k8s.io/v1beta1",
  resources: [
    { name: "nodes", singularName: "", namespaced: false, kind: "NodeMetrics", verbs: ["get", "list"] },
    { name: "pods", singularName: "", namespaced: true, kind: "PodMetrics", verbs: ["get", "list"] },
  ],
};

/** A Status for a missing object: https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/status/ (v1.33). */
const NOT_FOUND = { kind: "Status", apiVersion: "v1", status: "Failure", message: 'deployments.apps "gone" not found', reason: "NotFound", code: 404 };

function answer(request: http.IncomingMessage, response: http.ServerResponse, body: string) {
  requests.push({
    method: request.method!,
    url: request.url!,
    contentType: request.headers["content-type"],
    body,
    authorization: request.headers.authorization,
  });
  const url = new URL(request.url!, "http://localhost");
  const json = (status: number, value: unknown) => {
    response.writeHead(status, { "content-type": "application/json" });
    response.end(JSON.stringify(value));
  };
  if (url.pathname === "/apis/apps/v1") return json(200, APPS_V1);
  if (url.pathname === "/apis/metrics.k8s.io/v1beta1") return json(200, METRICS_V1BETA1);
  // A group nobody installed: the API server's 404 (a Status, reason NotFound).
  if (url.pathname === "/apis/postgresql.cnpg.io/v1") return json(404, { ...NOT_FOUND, message: "the server could not find the requested resource" });
  if (url.pathname.endsWith("/deployments/gone")) return json(404, NOT_FOUND);
  if (request.method === "PATCH") return json(200, { ...JSON.parse(body), metadata: { ...JSON.parse(body).metadata, resourceVersion: "101" } });
  if (request.method === "DELETE") return json(200, { kind: "Status", apiVersion: "v1", status: "Success" });
  if (url.searchParams.get("watch") === "true") {
    // A watch streams one JSON event per line (https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes, v1.33),
    // here one change then an ERROR event with a 410 Gone Status, as a too old resourceVersion gets.
    response.writeHead(200, { "content-type": "application/json" });
    response.write(
      `${JSON.stringify({ type: "MODIFIED", object: { apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "web", namespace: "shop-prod", resourceVersion: "102" } } })}\n`,
    );
    response.end(
      `${JSON.stringify({ type: "ERROR", object: { kind: "Status", apiVersion: "v1", status: "Failure", message: "too old resource version: 42 (101)", reason: "Expired", code: 410 } })}\n`,
    );
    return;
  }
  if (url.pathname.endsWith("/log")) {
    response.writeHead(200, { "content-type": "text/plain" });
    return response.end("2026-12-06T09:30:07.123456789Z listening on 3000\n");
  }
  return json(200, {
    kind: "DeploymentList",
    apiVersion: "apps/v1",
    metadata: { resourceVersion: "100" },
    items: [{ apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "web", namespace: "shop-prod" } }],
  });
}

beforeAll(async () => {
  server = http.createServer((request, response) => {
    let body = "";
    request.on("data", (chunk: Buffer) => (body += chunk.toString()));
    request.on("end", () => answer(request, response, body));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const config = new KubeConfig();
  config.loadFromOptions({
    clusters: [{ name: "test", server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, skipTLSVerify: true }],
    users: [{ name: "engine", token: "sa-token" }],
    contexts: [{ name: "test", cluster: "test", user: "engine" }],
    currentContext: "test",
  });
  api = clientNodeApi(config);
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const deployment = { apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "web", namespace: "shop-prod" }, spec: { replicas: 0 } };

describe("the KubeApi seam over @kubernetes/client-node", () => {
  it("applies with server-side apply: a PATCH of content type apply-patch, the field manager and force", async () => {
    requests.length = 0;
    await api.apply(deployment);
    await api.apply(deployment, { fieldManager: "slipway-scale" });
    const patches = requests.filter((request) => request.method === "PATCH");
    expect(patches.map((request) => request.url)).toEqual([
      "/apis/apps/v1/namespaces/shop-prod/deployments/web?fieldManager=slipway&force=true",
      "/apis/apps/v1/namespaces/shop-prod/deployments/web?fieldManager=slipway-scale&force=true",
    ]);
    expect(patches[0]!.contentType).toBe("application/apply-patch+yaml");
    expect(JSON.parse(patches[0]!.body)).toEqual(deployment);
    expect(patches[0]!.authorization).toBe("Bearer sa-token");
  });

  it("lists with selectors and returns the list's resourceVersion; reads a missing object as null and deletes in the background", async () => {
    requests.length = 0;
    const listed = await api.list("apps/v1", "Deployment", {
      namespace: "shop-prod",
      labelSelector: "slipway.dev/service-id=abc",
      fieldSelector: "metadata.name=web",
    });
    expect(listed).toMatchObject({ resourceVersion: "100", items: [{ metadata: { name: "web" } }] });
    const listUrl = new URL(requests.find((request) => request.method === "GET" && request.url.includes("/deployments?"))!.url, "http://localhost");
    expect(listUrl.pathname).toBe("/apis/apps/v1/namespaces/shop-prod/deployments");
    expect(listUrl.searchParams.get("labelSelector")).toBe("slipway.dev/service-id=abc");
    expect(listUrl.searchParams.get("fieldSelector")).toBe("metadata.name=web");

    expect(await api.get({ apiVersion: "apps/v1", kind: "Deployment", namespace: "shop-prod", name: "gone" })).toBeNull();
    expect(await api.delete({ apiVersion: "apps/v1", kind: "Deployment", namespace: "shop-prod", name: "gone" })).toBe(false);
    expect(await api.delete({ apiVersion: "apps/v1", kind: "Deployment", namespace: "shop-prod", name: "web" })).toBe(true);
    const deletion = requests.filter((request) => request.method === "DELETE").at(-1)!;
    expect(new URL(deletion.url, "http://localhost").searchParams.get("propagationPolicy") ?? JSON.parse(deletion.body || "{}").propagationPolicy).toBe(
      "Background",
    );
  });

  it("watches from a resourceVersion, delivers the events and ends with the ERROR event's Status (a 410 Gone)", async () => {
    requests.length = 0;
    const events: string[] = [];
    const stream = await api.watch("apps/v1", "Deployment", { namespace: "shop-prod", fieldSelector: "metadata.name=web", resourceVersion: "100" }, (event) =>
      events.push(`${event.type} ${event.object.metadata?.resourceVersion}`),
    );
    await expect(stream.done).rejects.toThrow("watch of Deployment failed: too old resource version: 42 (101) (410)");
    expect(events).toEqual(["MODIFIED 102"]);
    const url = new URL(requests[0]!.url, "http://localhost");
    expect(url.pathname).toBe("/apis/apps/v1/namespaces/shop-prod/deployments");
    expect(Object.fromEntries(url.searchParams)).toMatchObject({
      watch: "true",
      resourceVersion: "100",
      fieldSelector: "metadata.name=web",
      allowWatchBookmarks: "true",
    });
  });

  it("asks API discovery whether a group serves a kind: a 404 for a group nobody installed is no", async () => {
    requests.length = 0;
    expect(await api.serves("metrics.k8s.io/v1beta1", "PodMetrics")).toBe(true);
    expect(await api.serves("metrics.k8s.io/v1beta1", "Cluster")).toBe(false);
    expect(await api.serves("postgresql.cnpg.io/v1", "Cluster")).toBe(false);
    expect(requests.map((request) => `${request.method} ${request.url}`)).toEqual([
      "GET /apis/metrics.k8s.io/v1beta1",
      "GET /apis/metrics.k8s.io/v1beta1",
      "GET /apis/postgresql.cnpg.io/v1",
    ]);
  });

  it("reads a container's log with the options the API documents", async () => {
    requests.length = 0;
    let text = "";
    const out = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        text += chunk.toString();
        callback();
      },
    });
    const stream = await api.logs("shop-prod", "web-7d4b9c8f6d-a1", "app", { tailLines: 20, previous: true, timestamps: true }, out);
    await stream.done;
    expect(text).toBe("2026-12-06T09:30:07.123456789Z listening on 3000\n");
    const url = new URL(requests[0]!.url, "http://localhost");
    expect(url.pathname).toBe("/api/v1/namespaces/shop-prod/pods/web-7d4b9c8f6d-a1/log");
    expect(Object.fromEntries(url.searchParams)).toMatchObject({ container: "app", tailLines: "20", previous: "true", timestamps: "true" });
  });
});

describe("finding the cluster", () => {
  it("beside the cluster, reads the kubeconfig and its context, and names what is missing", async () => {
    const fs = await import("node:fs/promises");
    const os = await import("node:os");
    const path = await import("node:path");
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "slipway-kubeconfig-"));
    const file = path.join(dir, "config");
    // The kubeconfig format: https://kubernetes.io/docs/concepts/configuration/organize-cluster-access-kubeconfig/ (v1.33).
    await fs.writeFile(
      file,
      [
        "apiVersion: v1",
        "kind: Config",
        "clusters: [{ name: kind-slipway, cluster: { server: 'https://127.0.0.1:6443' } }, { name: other, cluster: { server: 'https://10.0.0.1:6443' } }]",
        "users: [{ name: admin, user: { token: t } }]",
        "contexts: [{ name: kind-slipway, context: { cluster: kind-slipway, user: admin } }, { name: other, context: { cluster: other, user: admin } }]",
        "current-context: other",
      ].join("\n"),
    );
    try {
      expect(loadKubeConfig({ inCluster: false, kubeconfig: file, context: "kind-slipway" }).getCurrentCluster()?.server).toBe("https://127.0.0.1:6443");
      expect(loadKubeConfig({ inCluster: false, kubeconfig: file }).getCurrentCluster()?.server).toBe("https://10.0.0.1:6443");
      expect(() => loadKubeConfig({ inCluster: false, kubeconfig: file, context: "prod" })).toThrow("the kubeconfig has no context prod");
      expect(() => loadKubeConfig({ inCluster: false, kubeconfig: path.join(dir, "missing") })).toThrow(
        `${path.join(dir, "missing")} does not exist; set KUBECONFIG`,
      );
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
