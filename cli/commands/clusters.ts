import { Option, type Command } from "commander";
import type { Cluster, CreatedCluster } from "../api-types";
import type { Context } from "../context";
import { usageError } from "../errors";
import { formatAge, table } from "../format";

const clusterKinds = ["local", "docker", "kubernetes"] as const;

export function registerClusterCommands(program: Command, ctx: Context): void {
  const cluster = program.command("cluster").description("Clusters (deployment targets) and their engines: list, create");

  cluster
    .command("list")
    .description("List clusters and whether their engine is connected")
    .option("--json", "print the API objects")
    .action(async (options: { json?: boolean }) => {
      const clusters = await (await ctx.api()).get<Cluster[]>("/clusters");
      if (options.json) return ctx.printJson(clusters);
      ctx.print(
        table(clusters, [
          { header: "NAME", value: (c) => c.name },
          { header: "KIND", value: (c) => c.kind },
          { header: "DOMAIN", value: (c) => c.domainSuffix },
          { header: "ENGINE", value: (c) => (c.tokenRevoked ? "token revoked" : c.connected ? "connected" : "disconnected") },
          { header: "VERSION", value: (c) => c.engineVersion },
          { header: "LAST SEEN", value: (c) => formatAge(c.lastHeartbeatAt) },
          { header: "ID", value: (c) => c.id },
        ]),
      );
    });

  cluster
    .command("create")
    .description("Register a cluster; prints its engine token (shown once) and the command that starts its engine")
    .argument("<name>")
    .addOption(new Option("--kind <kind>", "what the engine runs workloads on").choices(clusterKinds).default("local"))
    .option("--domain <suffix>", "services are served at <service>-<env>-<project>.<suffix>", "localhost")
    .option("--docker-host <url>", "with --kind docker: the engine's Docker Engine API (Docker or Podman), e.g. unix:///run/podman/podman.sock")
    .option("--json", "print the API object (with the token)")
    .action(async (name: string, options: { kind: string; domain: string; dockerHost?: string; json?: boolean }) => {
      if (options.dockerHost && options.kind !== "docker") throw usageError("--docker-host goes with --kind docker");
      const api = await ctx.api();
      const created = await api.post<CreatedCluster>("/clusters", { name, kind: options.kind, domainSuffix: options.domain });
      if (options.json) return ctx.printJson(created);
      ctx.print(
        [
          `Created cluster ${created.cluster.name} (${created.cluster.kind}, ${created.cluster.id}).`,
          "Its engine token, shown only this once:",
          created.engineToken,
          "Start its engine on the cluster's host with:",
          // The control plane never dials into a cluster: only its engine talks to the Docker host.
          `slipway engine --url ${api.url} --token ${created.engineToken}${
            options.kind === "docker" ? ` --runtime docker --docker-host ${options.dockerHost ?? "unix:///var/run/docker.sock"}` : ""
          }`,
        ].join("\n"),
      );
    });
}
