import fs from "node:fs/promises";
import path from "node:path";
import type { z } from "zod";

/** Writes JSON so that a reader (or an engine killed mid-write) sees the old or the new file, never half of one; the engine's only, unless told. */
export async function writeJsonAtomic(file: string, value: unknown, mode = 0o600): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  await fs.writeFile(tmp, JSON.stringify(value, null, 2), { mode });
  await fs.rename(tmp, file);
}

/** Reads and validates a JSON file; a missing file is `null`, a corrupt one throws. */
export async function readJson<T extends z.ZodType>(file: string, schema: T): Promise<z.infer<T> | null> {
  let text: string;
  try {
    text = await fs.readFile(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw error;
  }
  try {
    return schema.parse(JSON.parse(text));
  } catch (error) {
    throw new Error(`${file} is not what this engine can read: ${(error as Error).message}`, { cause: error });
  }
}
