import { spawn } from "node:child_process";
import { once } from "node:events";
import { afterEach, describe, expect, it } from "vitest";
import { pidsListeningOn } from "./processes";

const children: ReturnType<typeof spawn>[] = [];
afterEach(() => {
  for (const child of children.splice(0)) child.kill("SIGKILL");
});

describe("finding who listens on a port", () => {
  it("finds a listener that opens and closes files all the time (as a busy app or the engine itself does)", async () => {
    // Once listening, the child closes and opens again, in a tight loop, files whose descriptors come before its socket's.
    const child = spawn(
      process.execPath,
      [
        "-e",
        `const fs = require("node:fs");
         const open = () => Array.from({ length: 64 }, () => fs.openSync("/dev/null", "r"));
         let files = open();
         const server = require("node:net").createServer();
         server.listen(0, "127.0.0.1", () => {
           console.log(server.address().port);
           for (;;) {
             for (const fd of files) fs.closeSync(fd);
             files = open();
           }
         });`,
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    children.push(child);
    const [line] = (await once(child.stdout!, "data")) as [Buffer];
    const port = Number(line.toString().trim());
    for (let scan = 0; scan < 300; scan++) expect(pidsListeningOn(port, (pid) => pid === child.pid)).toEqual([child.pid]);
  });
});
