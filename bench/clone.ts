import { createCaller } from "../server/api/root";
import { percentile } from "./stats";
import type { startBenchControlPlane } from "./control-plane";

type ControlPlane = Awaited<ReturnType<typeof startBenchControlPlane>>;

const WARM_UP_RUNS = 10;

/**
 * Time to clone (metadata only) an environment of 20 services and 200 variables through the
 * API: the one transaction that copies services and re-encrypts every variable for its copy.
 * The baseline is reading the same environment's services and variables (two listings).
 */
export async function measureClone(plane: ControlPlane, runs: number) {
  const api = createCaller({ services: plane.services, actor: plane.org.as("DEVELOPER") });
  const project = await api.projects.create({ name: "clone-bench" });
  const source = await api.environments.create({ projectId: project.id, name: "source" });
  const services = [];
  for (let i = 0; i < 20; i++) {
    services.push(await api.services.create({ environmentId: source.id, name: `svc-${i}`, config: { git: { url: "https://example.test/app.git" } } }));
  }
  // 200 variables: 40 at the environment, 8 on each service (a quarter of them secret).
  await api.variables.import({ scope: "ENVIRONMENT", targetId: source.id, content: Array.from({ length: 40 }, (_, i) => `ENV_${i}=value-${i}`).join("\n") });
  for (const service of services) {
    await api.variables.import({ scope: "SERVICE", targetId: service.id, content: Array.from({ length: 6 }, (_, i) => `PLAIN_${i}=v${i}`).join("\n") });
    await api.variables.import({ scope: "SERVICE", targetId: service.id, content: "SECRET_A=a\nSECRET_B=b", secret: true });
  }

  // Not measured: the first calls open the pool's connections (the reads run side by side, a
  // connection each) and compile the code; a p99 of 100 runs would be the first run's.
  for (let i = 0; i < WARM_UP_RUNS; i++) await api.environments.clone({ environmentId: source.id, name: `warm-up-${i}` });
  const clone: number[] = [];
  const read: number[] = [];
  for (let i = 0; i < runs; i++) {
    let started = performance.now();
    await api.environments.clone({ environmentId: source.id, name: `copy-${i}` });
    clone.push(performance.now() - started);
    started = performance.now();
    await api.services.list({ environmentId: source.id });
    await api.variables.list({ scope: "ENVIRONMENT", targetId: source.id });
    read.push(performance.now() - started);
  }
  return { runs, p50: percentile(clone, 50), p99: percentile(clone, 99), readP50: percentile(read, 50), readP99: percentile(read, 99) };
}
