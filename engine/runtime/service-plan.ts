import fs from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import type { ApplicationServiceSpec, JobServiceSpec } from "../protocol";
import { type BuildPlan, detectBuildPlan, planOverrides, type RepoFacts } from "./build-plan";
import { gatherRepoFacts } from "./plans/repo-facts";
import { StepError } from "./runtime";

/**
 * The build plan of a service's checkout, as every runtime that builds from source decides it
 * (local: processes; docker: an image without a Dockerfile): the repository's facts, then the
 * service's own settings over detection. Shared so that an app deploys the same way on either.
 */
export async function servicePlan(checkout: string, appDir: string, service: ApplicationServiceSpec | JobServiceSpec): Promise<BuildPlan> {
  const detected = detectBuildPlan(await readRepoFacts(checkout, appDir), planOverrides(service));
  if (!detected.ok) throw new StepError(detected.reason);
  return detected.plan;
}

/**
 * The files a Python plan writes before its install (requirements from Pipfile.lock): never over
 * a file of the repository's, which could be a link anywhere on the host.
 */
export async function writeGeneratedFiles(appDir: string, plan: BuildPlan): Promise<void> {
  for (const file of plan.python?.generated ?? [])
    await fsp.writeFile(path.join(appDir, file.path), file.text, { flag: "wx" }).catch((error: NodeJS.ErrnoException) => {
      if (error.code === "EEXIST") throw new StepError(`${file.path} is in the repository: the engine writes it from Pipfile.lock; remove it`);
      throw error;
    });
}

/** What detection reads, from the checkout: the app's directory and, for a workspace app, the repository root. */
export async function readRepoFacts(checkout: string, appDir: string): Promise<RepoFacts> {
  const gathered = await gatherRepoFacts(
    {
      list: (dir) => fsp.readdir(path.join(checkout, dir)).catch(() => []),
      read: (file) =>
        readRepoFile(checkout, file).catch((error: unknown) => {
          if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
          throw error;
        }),
    },
    // appDir is a real path (shared/git.ts's appDirectory): so is the checkout it is measured from.
    path.relative(await fsp.realpath(checkout), appDir),
  );
  if (!gathered.ok) throw new StepError(gathered.reason);
  return gathered.facts;
}

/**
 * A file at the app's root, read by the engine (root, outside any sandbox): never through a
 * symbolic link, which a repository may point anywhere on the host (its first line would reach
 * the build log in an error about it), and never waiting on something that is not a file.
 */
export async function readRepoFile(checkout: string, name: string): Promise<string> {
  let handle: fsp.FileHandle;
  try {
    handle = await fsp.open(path.join(checkout, name), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ELOOP")
      throw new StepError(`${name} is a symbolic link: the engine reads only regular files of the repository`);
    throw error;
  }
  try {
    if (!(await handle.stat()).isFile()) throw new StepError(`${name} is not a regular file`);
    return await handle.readFile("utf8");
  } finally {
    await handle.close();
  }
}
