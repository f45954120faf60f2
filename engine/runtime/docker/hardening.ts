import type Docker from "dockerode";

/**
 * What every container the docker runtime creates runs with (issue 13): never privileged, no
 * host paths or devices, no new privileges through setuid binaries or file capabilities, every
 * capability dropped except the few that a container starting as root needs to drop to its
 * own user (the entrypoints of many official images do), and a bound on its processes.
 * https://docs.docker.com/engine/security/#linux-kernel-capabilities
 */

/**
 * Kept when the container's user is root: changing file owners and modes (an entrypoint
 * preparing its data directory), switching to another user (gosu, su-exec, nginx's workers),
 * binding ports under 1024, signalling the processes it started as other users. Docker's
 * default set adds MKNOD, NET_RAW, SETFCAP, SETPCAP, SYS_CHROOT, FSETID and AUDIT_WRITE.
 */
export const ROOT_CAPABILITIES = ["CHOWN", "DAC_OVERRIDE", "FOWNER", "SETUID", "SETGID", "NET_BIND_SERVICE", "KILL"] as const;

/** Enough for any app's threads and workers; a fork bomb stops here instead of at the host's limit. */
export const PIDS_LIMIT = 4096;

/** Whether a container user (the image's `USER`, or the service's `user`) is root: unset, `root` or uid 0, with any group. */
export function isRootUser(user: string | undefined): boolean {
  const name = (user ?? "").split(":")[0]!.trim();
  return name === "" || name === "root" || name === "0";
}

/** The security settings of a container whose process runs as `user`. */
export function hardenedHostConfig(options: { user: string | undefined; readOnlyRootFilesystem?: boolean }): Docker.HostConfig {
  return {
    Privileged: false,
    CapDrop: ["ALL"],
    CapAdd: isRootUser(options.user) ? [...ROOT_CAPABILITIES] : [],
    SecurityOpt: ["no-new-privileges"],
    // Nothing of the host's file system: no bind mounts, volumes from elsewhere or devices.
    Binds: [],
    Mounts: [],
    Devices: [],
    PidsLimit: PIDS_LIMIT,
    ...(options.readOnlyRootFilesystem ? { ReadonlyRootfs: true, Tmpfs: { "/tmp": "rw,nosuid,nodev,size=256m,mode=1777" } } : {}),
  };
}

/** The user a container of `image` runs as: the service's choice, else the image's `USER`. */
export async function containerUser(docker: Docker, image: string, chosen: string | undefined): Promise<string | undefined> {
  if (chosen) return chosen;
  const info = await docker.getImage(image).inspect();
  return info.Config?.User || undefined;
}
