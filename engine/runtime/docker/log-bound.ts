import type Docker from "dockerode";

/** What a container's log keeps on disk by default: SLIPWAY_RUNTIME_LOG_KEEP_MB's default (engine/config.ts). */
export const DEFAULT_CONTAINER_LOG_KEEP_BYTES = 16 * 1024 * 1024;
/** conmon reads a container's output 8 KiB at a time: Podman refuses a smaller log_size_max. */
const MIN_KEEP_BYTES = 8 * 1024;

/**
 * The log of every container the docker runtime creates (HostConfig.LogConfig). Without one,
 * Docker's json-file driver (Podman's k8s-file) keeps every line an app ever wrote, and a chatty
 * app fills the host's disk; with it, the file is rotated at `keepBytes`.
 *
 * - Docker keeps the current file and one rotated file (max-file 2): at most 2 × keepBytes, and
 *   its follow (GET /containers/{id}/logs?follow=1) reads on from the rotated file into the new
 *   one, so a rotation loses and repeats no line. A line is lost only when the engine is more
 *   than a whole file behind: the engine stopped while the app wrote more than keepBytes.
 * - Podman (4.x) takes json-file as its k8s-file and max-size as its log_size_max, and ignores
 *   max-file: conmon truncates the file when it would exceed keepBytes, so at most keepBytes. Its
 *   follow polls the file (every 250 ms) and re-opens it once replaced, without reading the old
 *   one to its end: the lines written since the last poll before a rotation are lost (at most
 *   250 ms of the app's output, once per keepBytes written; a whole file when the app writes
 *   keepBytes faster than that), never repeated, the rest in order. So the bound must be large
 *   beside what an app writes in a quarter of a second: the default 16 MiB is.
 */
export function boundedLogConfig(keepBytes: number): NonNullable<Docker.HostConfig["LogConfig"]> {
  const kib = Math.max(MIN_KEEP_BYTES, Math.round(keepBytes)) / 1024;
  return { Type: "json-file", Config: { "max-size": `${Math.ceil(kib)}k`, "max-file": "2" } };
}
