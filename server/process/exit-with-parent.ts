/**
 * Preloaded (`--import`) into the children of `npm start`, which are started with an IPC
 * channel. The supervisor normally stops its children itself; when it dies without doing so
 * (SIGKILL, the OOM killer), its end of the channel closes, and the child stops as if it had
 * been sent SIGTERM instead of running on, orphaned, holding its port.
 */
if (process.channel) {
  process.once("disconnect", () => process.kill(process.pid, "SIGTERM"));
  // The listener must not keep an otherwise finished process alive.
  process.channel.unref();
}

export {};
