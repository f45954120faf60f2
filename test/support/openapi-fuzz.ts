import fc from "fast-check";

/**
 * Requests for the operations of an OpenAPI 3.1 document, generated with fast-check: mostly
 * the shape the schemas describe with a bad value here and there (a wrong type, "false" for a
 * boolean, a NUL, a lone surrogate, deep nesting), and now and then a body, a path or a query
 * string that has nothing to do with it. For server/api/openapi-fuzz.test.ts (issue 13).
 */

/** The part of JSON Schema the document generated from the zod inputs uses. */
export type JsonSchema = {
  type?: string | string[];
  enum?: unknown[];
  const?: unknown;
  format?: string;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  items?: JsonSchema;
  minItems?: number;
  maxItems?: number;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  propertyNames?: JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
};

type Parameter = { name: string; in: "path" | "query" | "header" | "cookie"; required?: boolean; schema?: JsonSchema };
type OpenApiDocument = {
  paths: Record<string, Record<string, { parameters?: Parameter[]; requestBody?: { content?: Record<string, { schema?: JsonSchema }> } }>>;
};

export type Operation = { method: string; path: string; parameters: Parameter[]; body: JsonSchema | null };

export type FuzzRequest = { method: string; path: string; query: string; contentType: string | null; body: string | Uint8Array | null };

/**
 * Values that get further than random ones, by the name of the parameter or property they go in:
 * ids that exist (`environmentId`, `clusterId` …), a git URL, a time zone.
 */
export type KnownValues = Record<string, readonly unknown[]>;

export function operationsOf(document: OpenApiDocument): Operation[] {
  return Object.entries(document.paths).flatMap(([path, operations]) =>
    Object.entries(operations).map(([method, operation]) => ({
      method: method.toUpperCase(),
      path,
      parameters: operation.parameters ?? [],
      body: operation.requestBody?.content?.["application/json"]?.schema ?? null,
    })),
  );
}

/** Every property of every input schema, by name: the keys a free-form object (a service's config) is tried with. */
function propertiesOf(operations: Operation[]): Map<string, JsonSchema> {
  const found = new Map<string, JsonSchema>();
  const visit = (schema: JsonSchema | undefined) => {
    if (!schema) return;
    for (const [name, property] of Object.entries(schema.properties ?? {})) {
      if (!found.has(name)) found.set(name, property);
      visit(property);
    }
    visit(schema.items);
    if (typeof schema.additionalProperties === "object") visit(schema.additionalProperties);
    for (const option of [...(schema.anyOf ?? []), ...(schema.oneOf ?? [])]) visit(option);
  };
  for (const operation of operations) {
    visit(operation.body ?? undefined);
    for (const parameter of operation.parameters) visit(parameter.schema);
  }
  return found;
}

const LONE_SURROGATES = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Percent-encoding as a client would send it; a lone surrogate has no UTF-8 encoding, so it goes as U+FFFD. */
const encode = (text: string) => encodeURIComponent(text.replace(LONE_SURROGATES, "\uFFFD"));

const nastyStrings = fc.constantFrom(
  "",
  " ",
  "false",
  "true",
  "null",
  "0",
  "-1",
  "1e400",
  "\u0000",
  "a\u0000b",
  "\uD800",
  "x\uDFFF",
  "\uDFFF\uD800",
  "😀",
  "../..",
  "%00",
  "__proto__",
  "constructor",
  "x".repeat(5000),
  "\u202E",
  "' or 1=1 --",
  "${PATH}",
  "\r\n",
);

const anyString = fc.oneof(fc.string(), fc.string({ unit: "binary" }), fc.string({ unit: "grapheme" }), nastyStrings);

/** Arrays or objects nested 20 to 3,000 levels deep. */
const deeplyNested = fc
  .tuple(fc.integer({ min: 20, max: 3000 }), fc.boolean())
  .map(([levels, arrays]) => (arrays ? JSON.parse("[".repeat(levels) + "]".repeat(levels)) : JSON.parse('{"a":'.repeat(levels) + "1" + "}".repeat(levels))));

/** A value of any type: what a schema's field gets instead of the one it describes. */
const badValue: fc.Arbitrary<unknown> = fc.oneof(
  anyString,
  fc.constantFrom<unknown>(true, false, null, 0, 1.5, -1, 2 ** 31, 2 ** 53, 1e308, [], {}, [[]], [""]),
  fc.constant(null).map(() => JSON.parse('{"__proto__":{"polluted":true},"constructor":{"prototype":{}}}') as unknown),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.jsonValue({ maxDepth: 3 }),
  deeplyNested,
);

export class RequestArbitraries {
  private readonly vocabulary: Map<string, JsonSchema>;

  constructor(
    operations: Operation[],
    private readonly known: KnownValues,
  ) {
    this.vocabulary = propertiesOf(operations);
  }

  /** A value for `schema`: usually one it describes, sometimes a bad one, at any depth. */
  value(schema: JsonSchema, name?: string): fc.Arbitrary<unknown> {
    const known = name ? (this.known[name] ?? []) : [];
    return fc.oneof(
      ...(known.length > 0 ? [{ weight: 6, arbitrary: fc.constantFrom(...known) }] : []),
      { weight: 6, arbitrary: this.plausible(schema, name) },
      { weight: 1, arbitrary: badValue },
    );
  }

  private plausible(schema: JsonSchema, name?: string): fc.Arbitrary<unknown> {
    const options = schema.anyOf ?? schema.oneOf;
    if (options && options.length > 0) return fc.oneof(...options.map((option) => this.value(option, name)));
    if ("const" in schema) return fc.constant(schema.const);
    if (schema.enum && schema.enum.length > 0) return fc.constantFrom(...schema.enum);
    const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
    switch (type) {
      case "string":
        return this.string(schema);
      case "integer":
        return fc.integer({ min: Math.max(schema.minimum ?? -(2 ** 31), -(2 ** 31)), max: Math.min(schema.maximum ?? 2 ** 31, 2 ** 31) });
      case "number":
        return fc.double({ min: schema.minimum ?? -1e9, max: schema.maximum ?? 1e9, noNaN: true });
      case "boolean":
        return fc.boolean();
      case "null":
        return fc.constant(null);
      case "array":
        return fc.array(this.value(schema.items ?? {}, name), { minLength: schema.minItems ?? 0, maxLength: Math.min(schema.maxItems ?? 4, 4) });
      case "object":
        return this.object(schema);
      default:
        return fc.jsonValue({ maxDepth: 2 });
    }
  }

  private string(schema: JsonSchema): fc.Arbitrary<string> {
    if (schema.format === "uuid") return fc.uuid();
    if (schema.format === "date-time") {
      // Over all the years the format allows: 0000 to 9999.
      const date = fc.date({ noInvalidDate: true, min: new Date("0000-01-01T00:00:00Z"), max: new Date("9999-12-31T23:59:59.999Z") });
      return fc.oneof(
        date.map((d) => d.toISOString()),
        fc.constantFrom("0000-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999Z", "2024-02-29T12:00:00Z"),
      );
    }
    if (schema.pattern) {
      try {
        return fc.stringMatching(new RegExp(schema.pattern), { maxLength: schema.maxLength });
      } catch {
        // A pattern fast-check cannot generate from: any string will do.
      }
    }
    return fc.string({ minLength: schema.minLength ?? 0, maxLength: Math.min(schema.maxLength ?? 40, 40) });
  }

  private object(schema: JsonSchema): fc.Arbitrary<Record<string, unknown>> {
    const properties = schema.properties ?? {};
    const model = Object.fromEntries(Object.entries(properties).map(([key, property]) => [key, this.value(property, key)]));
    const required = (schema.required ?? []).filter((key) => key in properties);
    // Free-form (a service's config): tried with the keys the document uses elsewhere, and others.
    const free =
      typeof schema.additionalProperties === "object"
        ? fc.dictionary(fc.oneof(fc.constantFrom(...this.vocabulary.keys()), fc.string({ maxLength: 12 })), this.value(schema.additionalProperties), {
            maxKeys: 4,
          })
        : fc.constant({});
    const vocabularyValue = fc.constantFrom(...this.vocabulary.entries()).chain(([key, property]) => this.value(property, key).map((v) => ({ [key]: v })));
    return fc
      .tuple(
        fc.oneof(
          { weight: 6, arbitrary: fc.record(model, { requiredKeys: required }) },
          // Only the required fields: the shortest way past the schema, to what runs behind it.
          { weight: 3, arbitrary: fc.record(Object.fromEntries(required.map((key) => [key, model[key]!]))) },
          { weight: 1, arbitrary: fc.record(model, { requiredKeys: [] }) },
        ),
        free,
        fc.oneof(
          { weight: 6, arbitrary: fc.constant({}) },
          { weight: 1, arbitrary: vocabularyValue },
          { weight: 1, arbitrary: fc.dictionary(anyString, badValue, { maxKeys: 2 }) },
        ),
      )
      .map(([known, extra, unknown]) => ({ ...extra, ...unknown, ...known }));
  }

  /** A path segment: an id that exists (this organization's or another's), a random uuid, or anything. */
  private segment(name: string): fc.Arbitrary<string> {
    const known = (this.known[name] ?? []).map(String);
    return fc.oneof(
      ...(known.length > 0 ? [{ weight: 4, arbitrary: fc.constantFrom(...known) }] : []),
      { weight: 1, arbitrary: fc.uuid() },
      { weight: 2, arbitrary: anyString.map(encode) },
      { weight: 1, arbitrary: fc.constantFrom("%00", "%ED%A0%80", "%E0%A4%A", "%", "%C0%AF", "..", "%2F", "%2e%2e", "a".repeat(2000)) },
    );
  }

  private queryValue(parameter: Parameter): fc.Arbitrary<string> {
    return fc.oneof(
      { weight: 8, arbitrary: this.value(parameter.schema ?? {}, parameter.name).map((v) => encode(typeof v === "string" ? v : (JSON.stringify(v) ?? ""))) },
      { weight: 1, arbitrary: fc.constantFrom("%00", "%ED%A0%80", "%zz", "%", "1e3", "0x10", "%205", "") },
    );
  }

  private query(operation: Operation): fc.Arbitrary<string> {
    const parameters = operation.parameters.filter((p) => p.in === "query");
    const model = Object.fromEntries(parameters.map((p) => [p.name, this.queryValue(p)]));
    const pairs = fc.record(model, { requiredKeys: [] }).map((values) => Object.entries(values).map(([key, value]) => `${encode(key)}=${value}`));
    const extra = fc.array(
      fc.tuple(anyString, anyString).map(([key, value]) => `${encode(key)}=${encode(value)}`),
      { maxLength: 2 },
    );
    const repeated =
      parameters.length > 0
        ? fc.oneof(
            { weight: 6, arbitrary: fc.constant([]) },
            { weight: 1, arbitrary: fc.array(fc.constantFrom(...parameters.map((p) => `${encode(p.name)}=1`)), { maxLength: 2 }) },
          )
        : fc.constant([]);
    const junk = fc.oneof({ weight: 8, arbitrary: fc.constant([] as string[]) }, { weight: 1, arbitrary: fc.constantFrom(["&&"], ["="], ["%zz=1"], ["a=%"]) });
    return fc.tuple(pairs, extra, repeated, junk).map((parts) => parts.flat().join("&"));
  }

  private body(operation: Operation): fc.Arbitrary<Pick<FuzzRequest, "contentType" | "body">> {
    const schema = operation.body ?? { type: "object" };
    const text = fc.oneof(
      { weight: 12, arbitrary: this.object(schema).map((value) => JSON.stringify(value)) },
      { weight: 2, arbitrary: badValue.map((value) => JSON.stringify(value) ?? "null") },
      {
        weight: 1,
        arbitrary: fc.constantFrom("", " ", "{", "[1,", "nul", '{"a":1}garbage', '"\\ud800"', "\uFEFF{}", '{"a":1,"a":2}', "[".repeat(100_000)),
      },
    );
    const bytes = fc.uint8Array({ maxLength: 64 });
    const contentType = fc.oneof(
      { weight: 12, arbitrary: fc.constant("application/json") },
      { weight: 1, arbitrary: fc.constantFrom(null, "text/plain", "application/json; charset=latin1", "application/jsonx", "") },
    );
    return fc.record({ contentType, body: fc.oneof({ weight: 12, arbitrary: text }, { weight: 1, arbitrary: bytes }) });
  }

  request(operation: Operation): fc.Arbitrary<FuzzRequest> {
    const names = operation.parameters.filter((p) => p.in === "path").map((p) => p.name);
    const path = fc
      .tuple(...names.map((name) => this.segment(name)))
      .map((values) => names.reduce((path, name, i) => path.replace(`{${name}}`, values[i]!), operation.path));
    const hasBody = operation.method === "POST" || operation.method === "PUT" || operation.method === "PATCH";
    return fc
      .record({
        path,
        query: hasBody ? fc.constant("") : this.query(operation),
        body: hasBody ? this.body(operation) : fc.constant({ contentType: null, body: null }),
      })
      .map(({ path, query, body }) => ({ method: operation.method, path, query, ...body }));
  }
}

/** A request as a line of a failure report: method, URL and the body's first 300 characters. */
export function describeRequest(request: FuzzRequest): string {
  const body =
    request.body === null
      ? ""
      : typeof request.body === "string"
        ? request.body.slice(0, 300)
        : `<${request.body.length} bytes: ${Buffer.from(request.body).toString("hex")}>`;
  return `${request.method} ${request.path}${request.query ? `?${request.query}` : ""} (${request.contentType ?? "no content-type"}) ${body}`.trim();
}
