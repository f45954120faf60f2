import { InvalidArgumentError, Option, type Command } from "commander";
import type { Cluster, CreatedCluster } from "../api-types";
import type { Context } from "../context";
import { CliError, exitCodes, usageError } from "../errors";
import { formatAge, table } from "../format";
import { kubernetesInstallYaml } from "../../engine/protocol/kubernetes-install";

const clusterKinds = ["local", "docker", "kubernetes"] as const;

/** The tag `docker build -f Dockerfile.engine -t slipway-engine:0.1.0 .` gives the engine's image (README, Kubernetes). */
const DEFAULT_ENGINE_IMAGE = "slipway-engine:0.1.0";

/** Where a kubernetes cluster builds images of git services (`--build-location`, `--build-docker-host`). */
type BuildOptions = { buildLocation?: "cluster" | "engine-host"; buildDockerHost?: string };

type CreateOptions = BuildOptions & {
  kind: string;
  domain: string;
  dockerHost?: string;
  engineImage: string;
  engineUrl?: string;
  allowLocalRepositories?: boolean;
  json?: boolean;
};

function onOff(value: string): boolean {
  if (value === "on") return true;
  if (value === "off") return false;
  throw new InvalidArgumentError('expected "on" or "off"');
}

/** The kubernetes build setting the options give, or nothing when they give none; the API validates the Docker API's URL. */
function buildSetting(options: BuildOptions): { location: "cluster" } | { location: "engine-host"; dockerHost: string } | undefined {
  const { buildLocation, buildDockerHost } = options;
  if (buildLocation === undefined && buildDockerHost === undefined) return undefined;
  if (buildLocation === "cluster") {
    if (buildDockerHost !== undefined) throw usageError("--build-docker-host goes with --build-location engine-host");
    return { location: "cluster" };
  }
  if (buildDockerHost === undefined) throw usageError("--build-location engine-host needs --build-docker-host <unix:///…sock|tcp://host:port>");
  return { location: "engine-host", dockerHost: buildDockerHost };
}

const buildLocationOption = () =>
  new Option(
    "--build-location <where>",
    "with a kubernetes cluster: build images of git services in the cluster (a build Job) or on the engine's host (through --build-docker-host)",
  ).choices(["cluster", "engine-host"]);
const buildDockerHostOption = () =>
  new Option("--build-docker-host <url>", "the Docker API on the engine's host that builds images (unix:///var/run/docker.sock, tcp://host:port)");

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
          { header: "LOCAL REPOS", value: (c) => (c.allowLocalRepositories ? "allowed" : "no") },
          { header: "ISOLATION", value: isolationOf },
          { header: "BUILDS", value: buildsOf },
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
    .option("--engine-image <ref>", "with --kind kubernetes: the engine's image, built from this repository's Dockerfile.engine", DEFAULT_ENGINE_IMAGE)
    .option("--engine-url <url>", "with --kind kubernetes: the control plane's URL as the engine reaches it from inside the cluster (default: the CLI's)")
    .option("--allow-local-repositories", "services may be built from file:// URLs and paths on the engine's host (ADMIN)")
    .addOption(buildLocationOption())
    .addOption(buildDockerHostOption())
    .option("--json", "print the API object (with the token)")
    .action(async (name: string, options: CreateOptions) => {
      if (options.dockerHost && options.kind !== "docker") throw usageError("--docker-host goes with --kind docker");
      if (options.engineUrl && options.kind !== "kubernetes") throw usageError("--engine-url goes with --kind kubernetes");
      const kubernetesBuild = buildSetting(options);
      if (kubernetesBuild && options.kind !== "kubernetes") throw usageError("--build-location and --build-docker-host go with --kind kubernetes");
      const api = await ctx.api();
      const created = await api.post<CreatedCluster>("/clusters", {
        name,
        kind: options.kind,
        domainSuffix: options.domain,
        allowLocalRepositories: options.allowLocalRepositories ?? false,
        ...(kubernetesBuild ? { kubernetesBuild } : {}),
      });
      if (options.json) return ctx.printJson(created);
      if (options.kind === "kubernetes") {
        // The engine runs inside the cluster: the objects that install it, its token in their Secret, go to `kubectl apply -f -`.
        ctx.print(
          [
            `# Created cluster ${created.cluster.name} (kubernetes, ${created.cluster.id}).`,
            "# Its engine token is in the Secret below, shown only this once. Install the engine with:",
            "#   slipway cluster create … | kubectl apply -f -   (or save this output and apply it)",
            kubernetesInstallYaml({ controlPlaneUrl: options.engineUrl ?? api.url, engineToken: created.engineToken, image: options.engineImage }),
          ].join("\n"),
        );
        return;
      }
      ctx.print(
        [
          `Created cluster ${created.cluster.name} (${created.cluster.kind}, ${created.cluster.id}).`,
          "Its engine token, shown only this once:",
          created.engineToken,
          "Start its engine on the cluster's host with:",
          // The control plane never dials into a cluster: only its engine talks to the Docker host.
          // The token goes in the environment, which other users cannot read, not in the arguments, which they can (ps).
          `SLIPWAY_ENGINE_TOKEN=${created.engineToken} slipway engine --url ${api.url}${
            options.kind === "docker" ? ` --runtime docker --docker-host ${options.dockerHost ?? "unix:///var/run/docker.sock"}` : ""
          }${created.cluster.allowLocalRepositories ? " --allow-local-repositories" : ""}`,
        ].join("\n"),
      );
    });

  cluster
    .command("update")
    .description("Change a cluster's settings (ADMIN; every change is audited)")
    .argument("<name>")
    .option("--local-repositories <on|off>", "whether services may be built from file:// URLs and paths on the engine's host", onOff)
    .option("--trusted <on|off>", "run apps even where the engine's host cannot sandbox them: they can then read the engine's files", onOff)
    .option("--isolate-loopback <on|off>", "cut services off from the host's loopback services other than their environment's databases", onOff)
    .addOption(buildLocationOption())
    .addOption(buildDockerHostOption())
    .option("--json", "print the API object")
    .action(async (name: string, options: BuildOptions & { localRepositories?: boolean; trusted?: boolean; isolateLoopback?: boolean; json?: boolean }) => {
      const { localRepositories, trusted, isolateLoopback } = options;
      const kubernetesBuild = buildSetting(options);
      if (localRepositories === undefined && trusted === undefined && isolateLoopback === undefined && kubernetesBuild === undefined)
        throw usageError("give --local-repositories, --trusted, --isolate-loopback or --build-location");
      const api = await ctx.api();
      const found = (await api.get<Cluster[]>("/clusters")).find((candidate) => candidate.name === name);
      if (!found) throw new CliError(`no cluster named ${name}`, exitCodes.notFound);
      const updated = await api.patch<Cluster>(`/clusters/${found.id}`, {
        allowLocalRepositories: localRepositories,
        trusted,
        isolateLoopback,
        kubernetesBuild,
      });
      if (options.json) return ctx.printJson(updated);
      const lines: string[] = [];
      if (localRepositories !== undefined)
        lines.push(
          updated.allowLocalRepositories
            ? `Cluster ${name} allows local repositories; its engine clones them only when started with --allow-local-repositories`
            : `Cluster ${name} does not allow local repositories: deployments of services built from one are refused`,
        );
      if (trusted !== undefined)
        lines.push(
          updated.trusted
            ? `Cluster ${name} is trusted: where its engine cannot sandbox apps, it runs them anyway, and they can read the engine's files`
            : `Cluster ${name} is not trusted: its engine runs apps only in a sandbox`,
        );
      if (isolateLoopback !== undefined)
        lines.push(
          updated.isolateLoopback
            ? `Cluster ${name} isolates loopback: its services reach no service of the host on 127.0.0.1 but their environment's databases`
            : `Cluster ${name} does not isolate loopback: its services reach the host's loopback services`,
        );
      if (kubernetesBuild !== undefined) lines.push(`Cluster ${name} builds images of git services ${buildsOf(updated)}`);
      ctx.print(lines.join("\n"));
    });
}

/** Where a kubernetes cluster builds images of git services; `-` for the other kinds (their engine's host builds). */
function buildsOf(cluster: Cluster): string {
  const build = cluster.kubernetesBuild;
  if (!build) return "-";
  return build.location === "cluster" ? "in the cluster" : `on the engine's host (${build.dockerHost})`;
}

/** How the cluster's apps are kept apart, from what its engine reported and what an ADMIN chose. */
function isolationOf(cluster: Cluster): string {
  const sandbox = cluster.capabilities.sandbox;
  if (sandbox === "bubblewrap" || sandbox === "container") return `${String(sandbox)}${cluster.isolateLoopback ? ", loopback isolated" : ""}`;
  if (sandbox === "none") return cluster.trusted ? "none (trusted)" : `none: apps refused (${String(cluster.capabilities.sandboxProblem ?? "no sandbox")})`;
  return cluster.trusted ? "unknown (trusted)" : "unknown";
}
