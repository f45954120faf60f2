/**
 * The little of the tar format (POSIX ustar, https://pubs.opengroup.org/onlinepubs/9699919799/utilities/pax.html#tag_20_92_13_06)
 * the Engine API's archive endpoints need here: one directory to put into a container, one
 * file to read out of it. Containers get no host mounts (issue 13), so this is how a job's
 * outputs file crosses.
 */
const BLOCK = 512;

function field(header: Buffer, offset: number, length: number, value: string): void {
  header.write(value, offset, length, "utf8");
}

function octal(value: number, length: number): string {
  return `${value.toString(8).padStart(length - 1, "0")}\0`;
}

/** A tar holding one empty directory, owned by root, with `mode` (0o1777 lets any user of the image write in it). */
export function directoryTar(name: string, mode: number): Buffer {
  const header = Buffer.alloc(BLOCK);
  const entry = name.endsWith("/") ? name : `${name}/`;
  if (Buffer.byteLength(entry) > 100) throw new Error(`directory name too long for a tar header: ${entry}`);
  field(header, 0, 100, entry);
  field(header, 100, 8, octal(mode, 8));
  field(header, 108, 8, octal(0, 8));
  field(header, 116, 8, octal(0, 8));
  field(header, 124, 12, octal(0, 12));
  field(header, 136, 12, octal(Math.floor(Date.now() / 1000), 12));
  field(header, 156, 1, "5");
  field(header, 257, 6, "ustar\0");
  field(header, 263, 2, "00");
  // The checksum counts its own field as eight spaces.
  field(header, 148, 8, "        ");
  let sum = 0;
  for (const byte of header) sum += byte;
  field(header, 148, 8, `${sum.toString(8).padStart(6, "0")}\0 `);
  return Buffer.concat([header, Buffer.alloc(BLOCK * 2)]);
}

/**
 * The content of the first regular file in a tar (what GET /containers/{id}/archive returns
 * for a file), or null when there is none. Extended headers (pax, GNU long names) are skipped.
 * Refuses a file larger than `maxBytes` without reading it.
 */
export function firstFileOf(tar: Buffer, maxBytes: number): Buffer | null {
  for (let offset = 0; offset + BLOCK <= tar.length;) {
    const header = tar.subarray(offset, offset + BLOCK);
    if (header.every((byte) => byte === 0)) return null;
    const size = Number.parseInt(header.toString("ascii", 124, 136).replace(/\0.*$/, "").trim() || "0", 8);
    const type = String.fromCharCode(header[156]!);
    const start = offset + BLOCK;
    if (type === "0" || type === "\0") {
      if (size > maxBytes) throw new Error(`the file is larger than ${maxBytes} bytes`);
      return tar.subarray(start, start + size);
    }
    offset = start + Math.ceil(size / BLOCK) * BLOCK;
  }
  return null;
}
