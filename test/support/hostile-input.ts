import { z } from "zod";

/**
 * Hostile inputs for every procedure of the API (issue 13): a base input that a procedure's
 * schema would take (ids the test seeded, found by field name), then one field at a time made
 * hostile, or the whole input. Deterministic for a seed, so a failure replays.
 */

type JsonSchema = {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  enum?: unknown[];
  const?: unknown;
  format?: string;
  minimum?: number;
  minLength?: number;
  minItems?: number;
  $ref?: string;
  $defs?: Record<string, JsonSchema>;
};

/** Ids (and other values) the test seeded, by the name of the field that takes them: `serviceId`, `environmentId`... */
export type KnownValues = Record<string, unknown>;

/** JSON text spliced into a body where a value goes: what JSON.stringify cannot write (NaN, a number past 2^53, a key `__proto__`). */
export class RawJson {
  constructor(readonly text: string) {}
}

export type HostileValue = { kind: string; value: unknown };

const MEGABYTE_STRING = "a".repeat(1_000_000);
const LONG_ARRAY = new Array<string>(100_000).fill("a");

function nested(depth: number, leaf = "1"): RawJson {
  return new RawJson(`${'{"a":'.repeat(depth)}${leaf}${"}".repeat(depth)}`);
}

/** What replaces one field: wrong types, text PostgreSQL cannot store, sizes and numbers past any limit. */
export const FIELD_VALUES: HostileValue[] = [
  { kind: "null", value: null },
  { kind: "missing", value: undefined },
  { kind: "boolean", value: true },
  { kind: "zero", value: 0 },
  { kind: "empty string", value: "" },
  { kind: "empty object", value: {} },
  { kind: "empty array", value: [] },
  { kind: "NUL byte", value: "a\u0000b" },
  { kind: "lone surrogate", value: "a\uD800b" },
  { kind: "lone low surrogate", value: "\uDC00" },
  { kind: "1 MB string", value: MEGABYTE_STRING },
  { kind: "100k array", value: LONG_ARRAY },
  { kind: "negative", value: -1 },
  { kind: "fraction", value: 1.5 },
  { kind: "1e308", value: 1e308 },
  { kind: "1e400 (Infinity)", value: new RawJson("1e400") },
  { kind: "2^63", value: new RawJson("9223372036854775808") },
  { kind: "-2^63-1", value: new RawJson("-9223372036854775809") },
  { kind: "NaN text", value: "NaN" },
  { kind: "not a uuid", value: "not-a-uuid" },
  { kind: "uuid-like", value: "00000000-0000-0000-0000-00000000000g" },
  { kind: "nil uuid", value: "00000000-0000-0000-0000-000000000000" },
  { kind: "bad date", value: "2026-13-45T25:61:61Z" },
  { kind: "year 0", value: "0000-01-01T00:00:00Z" },
  { kind: "year 275760+", value: "+275761-01-01T00:00:00Z" },
  { kind: "SQL-ish", value: "' OR 1=1; --" },
  { kind: "path traversal", value: "../../../etc/passwd" },
  { kind: "markup", value: '<script>alert("x")</script>' },
  { kind: "deep nesting 100", value: nested(100) },
  { kind: "deep nesting 5000", value: nested(5000) },
  { kind: "__proto__ key", value: new RawJson('{"__proto__":{"polluted":true},"name":"x"}') },
  { kind: "constructor key", value: new RawJson('{"constructor":{"prototype":{"polluted":true}}}') },
  { kind: "NUL in a key", value: { "a\u0000": "b" } },
];

/** What replaces the whole input. */
export const WHOLE_INPUTS: HostileValue[] = [
  { kind: "input null", value: null },
  { kind: "input array", value: [1, 2] },
  { kind: "input string", value: "x" },
  { kind: "input number", value: 42 },
  { kind: "input deep nesting 5000", value: nested(5000) },
  { kind: "input __proto__", value: new RawJson('{"__proto__":{"isAdmin":true,"role":"OWNER"}}') },
];

export function toJson(value: unknown): string {
  const raw: string[] = [];
  const text = JSON.stringify(value, (_key, item: unknown) => {
    if (item instanceof RawJson) {
      raw.push(item.text);
      return `\u0001RAW${raw.length - 1}\u0001`;
    }
    return item;
  });
  return (text ?? "null").replace(/"\\u0001RAW(\d+)\\u0001"/g, (_match, index: string) => raw[Number(index)]!);
}

/** The JSON Schema of a procedure's input as a client writes it. */
export function inputSchemaOf(schema: unknown): JsonSchema {
  if (!schema) return {};
  return z.toJSONSchema(schema as z.ZodType, { io: "input", unrepresentable: "any" }) as JsonSchema;
}

function resolve(schema: JsonSchema, root: JsonSchema): JsonSchema {
  if (schema.$ref?.startsWith("#/$defs/")) return root.$defs?.[schema.$ref.slice("#/$defs/".length)] ?? {};
  if (schema.$ref === "#") return root;
  return schema;
}

function firstOption(schema: JsonSchema): JsonSchema {
  const options = schema.anyOf ?? schema.oneOf;
  if (!options) return schema;
  return options.find((option) => option.type !== "null") ?? options[0]!;
}

/** A value the schema would take, with seeded ids where the field name says what it is. */
export function baseValue(schema: JsonSchema, root: JsonSchema, known: KnownValues, name: string, depth = 0): unknown {
  const resolved = firstOption(resolve(schema, root));
  if (name in known) return known[name];
  if (resolved.const !== undefined) return resolved.const;
  if (resolved.enum) return resolved.enum[0];
  const type = Array.isArray(resolved.type) ? resolved.type[0] : resolved.type;
  switch (type) {
    case "object": {
      if (depth > 6) return {};
      const required = new Set(resolved.required ?? []);
      const entries = Object.entries(resolved.properties ?? {})
        .filter(([key]) => required.has(key))
        .map(([key, property]) => [key, baseValue(property, root, known, key, depth + 1)]);
      return Object.fromEntries(entries);
    }
    case "array":
      return resolved.minItems && resolved.items ? [baseValue(resolved.items, root, known, name, depth + 1)] : [];
    case "integer":
    case "number":
      return Math.max(resolved.minimum ?? 1, 1);
    case "boolean":
      return false;
    case "string":
      if (resolved.format === "uuid") return "7f4c1f6e-2b1d-4c3e-9a8b-0d1e2f3a4b5c";
      if (resolved.format === "date-time") return "2026-01-01T00:00:00Z";
      if (resolved.format === "email") return "someone@example.test";
      return "hostile".padEnd(resolved.minLength ?? 0, "-x");
    default:
      return null;
  }
}

/** The paths of the fields of an input (nested objects included, a few levels down). */
export function fieldPaths(schema: JsonSchema, root: JsonSchema, prefix: string[] = []): string[][] {
  const resolved = firstOption(resolve(schema, root));
  if (prefix.length >= 3 || !resolved.properties) return [];
  return Object.entries(resolved.properties).flatMap(([key, property]) => [[...prefix, key], ...fieldPaths(property, root, [...prefix, key])]);
}

/** `base` with the value at `path` replaced (or removed, for undefined); objects on the way created. */
export function withField(base: unknown, path: string[], value: unknown): unknown {
  const copy = structuredClone(typeof base === "object" && base !== null ? base : {}) as Record<string, unknown>;
  let target = copy;
  for (const key of path.slice(0, -1)) {
    const next = target[key];
    target[key] = typeof next === "object" && next !== null && !Array.isArray(next) ? next : {};
    target = target[key] as Record<string, unknown>;
  }
  const last = path[path.length - 1]!;
  if (value === undefined) delete target[last];
  else target[last] = value;
  return copy;
}

/** A small seeded generator (mulberry32): the same seed picks the same fields. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type HostileCase = { kind: string; field: string; input: unknown };

/**
 * The cases for one procedure: every field value once, on a field picked at random (an id
 * field for the ones meant for uuids), or on every field with `everyField`; extra keys beside
 * a valid input, and every whole input.
 */
export function hostileCases(
  schema: unknown,
  known: KnownValues,
  random: () => number,
  override: Record<string, unknown> = {},
  everyField = false,
): HostileCase[] {
  const json = inputSchemaOf(schema);
  const generated = baseValue(json, json, known, "");
  const base = typeof generated === "object" && generated !== null ? { ...generated, ...override } : generated;
  const paths = fieldPaths(json, json);
  const idPaths = paths.filter((path) => /Ids?$/.test(path[path.length - 1]!));
  const pick = <T>(items: T[]) => items[Math.floor(random() * items.length)]!;
  const cases: HostileCase[] = [
    { kind: "base", field: "-", input: base },
    { kind: "extra keys", field: "-", input: { ...(base as object), unexpected: "x", role: "OWNER", organizationId: known.organizationId } },
  ];
  for (const hostile of FIELD_VALUES) {
    if (paths.length === 0) break;
    const uuidKind = hostile.kind.includes("uuid");
    const targets = everyField ? paths : [uuidKind && idPaths.length > 0 ? pick(idPaths) : pick(paths)];
    for (const path of targets) cases.push({ kind: hostile.kind, field: path.join("."), input: withField(base, path, hostile.value) });
  }
  for (const hostile of WHOLE_INPUTS) cases.push({ kind: hostile.kind, field: "-", input: hostile.value });
  return cases;
}
