import { describe, expect, it } from "vitest";
import { levelsAtLeast, logLevelOf } from "./log-level";

describe("the level of a log line", () => {
  it("reads pino and bunyan's numeric levels", () => {
    expect(logLevelOf('{"level":30,"time":1765015200000,"pid":42,"hostname":"web-1","msg":"listening on 3000"}')).toBe("info");
    expect(logLevelOf('{"level":50,"time":1765015200000,"pid":42,"hostname":"web-1","err":{"type":"Error"},"msg":"boom"}')).toBe("error");
    expect(logLevelOf('{"name":"api","hostname":"web-1","pid":7,"level":40,"msg":"slow query","time":"2026-12-06T10:00:00.000Z","v":0}')).toBe("warn");
    expect(logLevelOf('{"level":60,"msg":"out of memory"}')).toBe("fatal");
    expect(logLevelOf('{"level":10,"msg":"entering handler"}')).toBe("debug");
    expect(logLevelOf('{"level":20,"msg":"cache miss"}')).toBe("debug");
  });

  it("reads winston, zap, structlog and python-json-logger's names", () => {
    expect(logLevelOf('{"level":"warn","message":"disk 91% full","timestamp":"2026-12-06T10:00:00.000Z"}')).toBe("warn");
    expect(logLevelOf('{"level":"error","ts":1765015200.123,"caller":"server/main.go:42","msg":"dial tcp: connection refused"}')).toBe("error");
    expect(logLevelOf('{"level":"dpanic","ts":1765015200.1,"msg":"invariant broken"}')).toBe("fatal");
    expect(logLevelOf('{"event": "user logged in", "level": "info", "timestamp": "2026-12-06T10:00:00Z"}')).toBe("info");
    expect(logLevelOf('{"event": "retrying", "level": "warning", "timestamp": "2026-12-06T10:00:00Z"}')).toBe("warn");
    expect(logLevelOf('{"asctime": "2026-12-06 10:00:00,000", "levelname": "CRITICAL", "message": "cannot reach db"}')).toBe("fatal");
    expect(logLevelOf('{"severity":"ERROR","message":"request failed","logging.googleapis.com/trace":"t"}')).toBe("error");
    expect(logLevelOf('{"lvl":"dbug","msg":"unknown name"}')).toBeNull();
    expect(logLevelOf('{"lvl":"info","msg":"log15"}')).toBe("info");
    expect(logLevelOf('  {"level":"DEBUG","msg":"padded"}\r')).toBe("debug");
  });

  it("gives plain text, JSON without a level and broken JSON no level", () => {
    expect(logLevelOf("Error: listen EADDRINUSE: address already in use :::3000")).toBeNull();
    expect(logLevelOf('{"msg":"no level here"}')).toBeNull();
    expect(logLevelOf('{"level":"error", "msg": "cut off')).toBeNull();
    expect(logLevelOf('{"level": true}')).toBeNull();
    expect(logLevelOf("[1,2,3]")).toBeNull();
    expect(logLevelOf("")).toBeNull();
  });

  it("keeps a level and the more severe ones", () => {
    expect(levelsAtLeast("warn")).toEqual(["warn", "error", "fatal"]);
    expect(levelsAtLeast("error")).toEqual(["error", "fatal"]);
    expect(levelsAtLeast("debug")).toHaveLength(5);
  });
});
