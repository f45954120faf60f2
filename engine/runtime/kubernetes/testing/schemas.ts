/**
 * Test support: checks a manifest against the Kubernetes OpenAPI schemas of the supported
 * versions, as the `kubernetes-models` packages ship them compiled (ajv): 5.1.0 (Kubernetes 1.36,
 * its changelog's "Update to Kubernetes v1.36.0") and 4.5.1 (Kubernetes 1.33.0), and the Gateway
 * API's HTTPRoute with @kubernetes-models/gateway-api 2.0.0. The OpenAPI schemas allow fields
 * they do not know, and the API server's strict field validation does not: a manifest must also
 * come out unchanged from @kubernetes/client-node's serializer, which keeps only the fields of
 * its generated models (a deep import: the serializer is not part of the package's public API).
 * CloudNativePG's Cluster is checked against its CRD's schema, vendored from the operator's
 * v1.30.0 release (cloudnative-pg/SOURCE.md): no package ships it.
 */
import { readFileSync } from "node:fs";
import { ObjectSerializer } from "@kubernetes/client-node/dist/gen/models/ObjectSerializer.js";
import { Ajv } from "ajv";
import { parse } from "yaml";
import { HTTPRoute } from "@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRoute";
import * as latest from "kubernetes-models";
import * as previous from "kubernetes-models-1.33";

export const VALIDATED_VERSIONS = ["1.33", "1.36"] as const;

type Validatable = new (data: never) => { validate(): void };

/** `apps/v1` + `Deployment` → the model class's path in a kubernetes-models module. */
function modelOf(module: Record<string, unknown>, apiVersion: string, kind: string): Validatable {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  const groupModule = group ? (module[groupKey(group)] as Record<string, unknown> | undefined) : module;
  const versioned = groupModule?.[version!] as Record<string, Validatable> | undefined;
  const model = versioned?.[kind];
  if (!model) throw new Error(`no schema for ${apiVersion} ${kind}`);
  return model;
}

/** kubernetes-models exports groups as camel-cased names: `networking.k8s.io` → `networkingK8sIo`, `apps` → `apps`. */
function groupKey(group: string): string {
  return group.replace(/[.-](\w)/g, (_, letter: string) => letter.toUpperCase());
}

/** Throws, naming the version and the field, where a manifest breaks a schema. */
export function validateManifest(object: { apiVersion?: string; kind?: string }): void {
  const { apiVersion, kind } = object;
  if (!apiVersion || !kind) throw new Error("a manifest needs apiVersion and kind");
  if (apiVersion === "gateway.networking.k8s.io/v1" && kind === "HTTPRoute") {
    new HTTPRoute(object as never).validate();
    return;
  }
  if (apiVersion === "postgresql.cnpg.io/v1" && kind === "Cluster") {
    const validate = cnpgClusterValidator();
    if (!validate(object))
      throw new Error(`Cluster is not valid for CloudNativePG ${CNPG_VERSION}: ${validate.errors?.map((e) => `${e.instancePath} ${e.message}`).join(", ")}`);
    return;
  }
  for (const [version, module] of [
    ["1.36", latest],
    ["1.33", previous],
  ] as const) {
    try {
      new (modelOf(module as never, apiVersion, kind))(object as never).validate();
    } catch (error) {
      throw new Error(
        `${kind} ${JSON.stringify((object as { metadata?: { name?: string } }).metadata?.name)} is not valid for Kubernetes ${version}: ${(error as Error).message}`,
      );
    }
  }
  const type = `${apiVersion.includes("/") ? apiVersion.split("/")[1]!.replace(/^v/, "V") : "V1"}${kind}`;
  // The serializer passes objects of a type it has no model of through untouched: that would check nothing.
  if ("probe" in (ObjectSerializer.serialize({ probe: 1 }, type, "") as object)) throw new Error(`@kubernetes/client-node has no model ${type}`);
  const known = JSON.parse(JSON.stringify(ObjectSerializer.serialize(object, type, ""))) as unknown;
  const unknown = unknownFields(JSON.parse(JSON.stringify(object)), known);
  if (unknown.length > 0) throw new Error(`${kind} has fields the Kubernetes API does not know: ${unknown.join(", ")}`);
}

function unknownFields(given: unknown, known: unknown, path = ""): string[] {
  if (given === null || typeof given !== "object") return [];
  if (Array.isArray(given)) return given.flatMap((item, index) => unknownFields(item, (known as unknown[] | undefined)?.[index], `${path}[${index}]`));
  const knownObject = (known ?? {}) as Record<string, unknown>;
  return Object.entries(given).flatMap(([key, value]) =>
    key in knownObject ? unknownFields(value, knownObject[key], `${path}.${key}`) : [`${path}.${key}`.replace(/^\./, "")],
  );
}

export const CNPG_VERSION = "1.30.0";
let cnpgValidator: ReturnType<Ajv["compile"]> | null = null;

/**
 * The Cluster CRD's openAPIV3Schema, compiled. A structural schema's API server drops or (with
 * strict field validation) refuses the fields it does not declare, where the schema does not say
 * `x-kubernetes-preserve-unknown-fields`: JSON Schema allows them unless told, so each object
 * with declared properties is closed here. Formats and the CRD's CEL rules
 * (`x-kubernetes-validations`) are not checked.
 */
function cnpgClusterValidator(): ReturnType<Ajv["compile"]> {
  if (cnpgValidator) return cnpgValidator;
  const crd = parse(readFileSync(new URL("./cloudnative-pg/postgresql.cnpg.io_clusters.yaml", import.meta.url), "utf8")) as {
    spec: { versions: { name: string; schema: { openAPIV3Schema: Record<string, unknown> } }[] };
  };
  const schema = crd.spec.versions.find((version) => version.name === "v1")!.schema.openAPIV3Schema;
  cnpgValidator = new Ajv({ strict: false, validateFormats: false, allErrors: true }).compile(closed(schema) as object);
  return cnpgValidator;
}

function closed(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(closed);
  if (!schema || typeof schema !== "object") return schema;
  const node = Object.fromEntries(Object.entries(schema).map(([key, value]) => [key, closed(value)])) as Record<string, unknown>;
  if (node.properties && node.additionalProperties === undefined && !node["x-kubernetes-preserve-unknown-fields"]) node.additionalProperties = false;
  return node;
}
