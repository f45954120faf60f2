import { execFile, spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import type Docker from "dockerode";
import { connectDocker } from "../../engine/runtime/docker/docker-host";

const run = promisify(execFile);

export type PodmanService = {
  /** unix:///…/podman.sock: the Docker-compatible Engine API. */
  url: string;
  docker: Docker;
  apiVersion: string;
  /** An image built here from busybox-static (no registry is needed): /bin/busybox and its applets, PATH=/bin. */
  baseImage: string;
  /**
   * The busybox image with the host's glibc (the libraries its Node links to, as `ldd` lists
   * them) added: a base for images that run a Node of the engine's toolchains, as Debian's slim
   * image would be where a registry is reachable. Built on first use.
   */
  glibcImage(): Promise<string>;
  /** The podman CLI on the same storage, for what tests check behind the engine's back. */
  podman(...args: string[]): Promise<string>;
  stop(): Promise<void>;
};

/** Where Debian's busybox-static puts the binary (the dynamic `busybox` package would not run in an empty root filesystem). */
const BUSYBOX_CANDIDATES = ["/bin/busybox", "/usr/bin/busybox"];

/**
 * A real Podman serving the Docker Engine API on a socket in a temporary directory, as root,
 * isolated from the host's containers: its own containers.conf (runc, no default ulimits: see
 * MACHINE.md), its own storage root, and a base image imported from busybox-static. Returns the
 * reason instead when Podman cannot run here, so the tests that need it skip saying why.
 */
export async function startPodman(options: { insecureRegistries?: string[] } = {}): Promise<PodmanService | { skip: string }> {
  if (process.getuid?.() !== 0) return { skip: "podman tests run as root (rootless podman needs subuid setup); this process is not root" };
  try {
    await run("podman", ["--version"]);
  } catch (error) {
    return { skip: `podman is not installed (apt-get install podman runc busybox-static): ${(error as Error).message}` };
  }
  let busybox: string | null = null;
  for (const candidate of BUSYBOX_CANDIDATES) {
    if (await isStaticElf(candidate)) {
      busybox = candidate;
      break;
    }
  }
  if (!busybox) return { skip: "no static busybox to build a base image from (apt-get install busybox-static)" };

  // Short: the socket path must stay under 108 bytes.
  const dir = await fs.mkdtemp("/tmp/slipway-podman-");
  const env = {
    ...process.env,
    CONTAINERS_CONF: path.join(dir, "containers.conf"),
    CONTAINERS_STORAGE_CONF: path.join(dir, "storage.conf"),
    // Registries of the test on 127.0.0.1 speak plain HTTP (Docker takes 127.0.0.0/8 as insecure by itself; Podman is told).
    ...(options.insecureRegistries ? { CONTAINERS_REGISTRIES_CONF: path.join(dir, "registries.conf") } : {}),
  };
  await fs.writeFile(env.CONTAINERS_CONF, '[containers]\ndefault_ulimits = []\n\n[engine]\nruntime = "runc"\n');
  if (env.CONTAINERS_REGISTRIES_CONF)
    await fs.writeFile(
      env.CONTAINERS_REGISTRIES_CONF,
      options.insecureRegistries!.map((location) => `[[registry]]\nlocation = "${location}"\ninsecure = true\n`).join("\n"),
    );
  const podman = async (...args: string[]) => (await run("podman", args, { env, maxBuffer: 16 * 1024 * 1024 })).stdout.trim();

  let service: ChildProcess | null = null;
  const cleanup = async () => {
    await podman("rm", "--all", "--force", "--time", "0").catch(() => undefined);
    if (service && service.exitCode === null && service.signalCode === null) {
      const exited = new Promise((resolve) => service?.once("exit", resolve));
      service.kill("SIGTERM");
      await Promise.race([exited, sleep(5_000)]);
      if (service.exitCode === null && service.signalCode === null) service.kill("SIGKILL");
    }
    // conmon keeps exec sessions around for 5 minutes (--exit-delay 300), and a canceled build's
    // RUN step goes on inside the service: end what still works in this directory.
    await killProcessesOf(dir);
    await podman("rmi", "--all", "--force").catch(() => undefined);
    await unmountUnder(dir);
    await fs.rm(dir, { recursive: true, force: true }).catch(async () => {
      await unmountUnder(dir);
      await fs.rm(dir, { recursive: true, force: true });
    });
  };

  try {
    // overlay is fast; a temp dir that is itself on overlayfs (some CI containers) needs vfs.
    let driver: string | null = null;
    for (const candidate of ["overlay", "vfs"]) {
      await fs.writeFile(env.CONTAINERS_STORAGE_CONF, `[storage]\ndriver = "${candidate}"\ngraphroot = "${dir}/storage"\nrunroot = "${dir}/run"\n`);
      if (await podman("info", "--format", "{{.Store.GraphDriverName}}").catch(() => null)) {
        driver = candidate;
        break;
      }
    }
    if (!driver) throw new Error("podman info fails with both the overlay and the vfs storage drivers");

    const baseImage = "localhost/slipway-busybox:test";
    await importBusybox(podman, busybox, dir, baseImage, []);
    let glibc: Promise<string> | null = null;
    const glibcImage = () =>
      (glibc ??= (async () => {
        const name = "localhost/slipway-glibc:test";
        await importBusybox(podman, busybox, dir, name, await sharedLibraries(process.execPath));
        return name;
      })());

    const socket = path.join(dir, "podman.sock");
    const url = `unix://${socket}`;
    const log = await fs.open(path.join(dir, "service.log"), "a");
    // In its own folder: conmon drops files (an `oom` marker when a container runs out of
    // memory) into its working directory.
    service = spawn("podman", ["system", "service", "--time=0", url], { env, cwd: dir, stdio: ["ignore", log.fd, log.fd] });
    await log.close();
    // Generous: on a loaded machine (parallel builds and test runs) the service takes tens of seconds to answer.
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        const connected = await connectDocker(url, 2_000);
        return {
          url,
          docker: connected.docker,
          apiVersion: connected.info.apiVersion,
          baseImage,
          glibcImage,
          podman,
          stop: cleanup,
        };
      } catch (error) {
        if (service.exitCode !== null || Date.now() > deadline) {
          const output = await fs.readFile(path.join(dir, "service.log"), "utf8").catch(() => "");
          throw new Error(`podman system service did not answer: ${(error as Error).message}\n${output.slice(-2000)}`);
        }
        await sleep(100);
      }
    }
  } catch (error) {
    await cleanup();
    return { skip: `podman could not be started: ${(error as Error).message}` };
  }
}

/** Imports a root file system of busybox and its applets (PATH=/bin), with `extra` host files at their own paths, as image `name`. */
async function importBusybox(podman: (...args: string[]) => Promise<string>, busybox: string, dir: string, name: string, extra: string[]): Promise<void> {
  const rootfs = await fs.mkdtemp(path.join(dir, "rootfs-"));
  await fs.mkdir(path.join(rootfs, "bin"), { recursive: true });
  await fs.copyFile(busybox, path.join(rootfs, "bin/busybox"));
  await fs.chmod(path.join(rootfs, "bin/busybox"), 0o755);
  const { stdout: applets } = await run(busybox, ["--list"]);
  for (const applet of applets.split("\n").map((entry) => entry.trim())) {
    if (applet && applet !== "busybox") await fs.symlink("busybox", path.join(rootfs, "bin", applet)).catch(() => undefined);
  }
  for (const sub of ["etc", "tmp", "www", "proc", "sys", "dev", "root", "usr/bin"]) await fs.mkdir(path.join(rootfs, sub), { recursive: true });
  // Where scripts' `#!/usr/bin/env node` look for it (npm's and yarn's bins among them), as in every distribution.
  await fs.symlink("/bin/busybox", path.join(rootfs, "usr/bin/env"));
  // As in every distribution's image: any user may write in /tmp (Podman copies its mode onto a tmpfs mounted there).
  await fs.chmod(path.join(rootfs, "tmp"), 0o1777);
  await fs.writeFile(path.join(rootfs, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n");
  await fs.writeFile(path.join(rootfs, "etc/group"), "root:x:0:\nnogroup:x:65534:\n");
  for (const file of extra) {
    await fs.mkdir(path.join(rootfs, path.dirname(file)), { recursive: true });
    // The file a link names (libc.so.6 is a link to libc-2.36.so on some systems), under the link's name.
    await fs.copyFile(await fs.realpath(file), path.join(rootfs, file));
  }
  const tarball = `${rootfs}.tar`;
  await run("tar", ["-C", rootfs, "-cf", tarball, "."]);
  await podman("import", "--change", "ENV PATH=/bin", "--change", 'CMD ["/bin/sh"]', tarball, name);
  await fs.rm(rootfs, { recursive: true, force: true });
  await fs.rm(tarball, { force: true });
}

/** The shared libraries a dynamically linked program loads, the dynamic loader included (`ldd`'s paths). */
async function sharedLibraries(program: string): Promise<string[]> {
  const { stdout } = await run("ldd", [program]);
  return [...stdout.matchAll(/(\/\S+\.so[.\d]*)/g)].map((match) => match[1]!);
}

/** Unmounts (lazily) whatever containers/storage left mounted under dir, deepest first. */
async function unmountUnder(dir: string): Promise<void> {
  const mounts = (await fs.readFile("/proc/self/mounts", "utf8"))
    .split("\n")
    .map((line) => line.split(" ")[1]?.replace(/\\040/g, " "))
    .filter((mountPoint): mountPoint is string => Boolean(mountPoint) && (mountPoint === dir || mountPoint!.startsWith(`${dir}/`)))
    .sort((a, b) => b.length - a.length);
  for (const mountPoint of mounts) await run("umount", ["-l", mountPoint]).catch(() => undefined);
}

/** A 64-bit ELF without a PT_INTERP program header needs no dynamic loader: it runs in an empty root filesystem. */
async function isStaticElf(file: string): Promise<boolean> {
  const data = await fs.readFile(file).catch(() => null);
  if (!data || data.length < 64 || data.readUInt32BE(0) !== 0x7f454c46 || data[4] !== 2) return false;
  const phoff = Number(data.readBigUInt64LE(0x20));
  const phentsize = data.readUInt16LE(0x36);
  const phnum = data.readUInt16LE(0x38);
  for (let index = 0; index < phnum; index++) if (data.readUInt32LE(phoff + index * phentsize) === 3) return false;
  return true;
}

/** SIGKILLs every process whose command line names `dir` or whose working directory is under it (one by one, by pid). */
async function killProcessesOf(dir: string): Promise<void> {
  for (let pass = 0; pass < 20; pass++) {
    const found: number[] = [];
    for (const entry of await fs.readdir("/proc")) {
      if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
      try {
        const cmdline = await fs.readFile(`/proc/${entry}/cmdline`, "utf8");
        const cwd = await fs.readlink(`/proc/${entry}/cwd`).catch(() => "");
        if (cmdline.includes(`${dir}/`) || cwd === dir || cwd.startsWith(`${dir}/`)) found.push(Number(entry));
      } catch {
        // Gone while we looked.
      }
    }
    if (found.length === 0) return;
    for (const pid of found) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // Gone already.
      }
    }
    await sleep(50);
  }
}
