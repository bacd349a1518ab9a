// A form generated from a tool's JSON Schema (`inputSchema`): one field per top-level property.

import type { JsonSchema } from "../api/types";

export type FieldKind = "string" | "number" | "integer" | "boolean" | "enum" | "json";

export interface FormField {
  name: string;
  kind: FieldKind;
  label: string;
  description: string;
  required: boolean;
  options: string[];
  defaultValue: string;
}

function typeOf(schema: JsonSchema): string | undefined {
  if (Array.isArray(schema.type)) return schema.type.find((t) => t !== "null");
  if (schema.type) return schema.type;
  const variant = schema.anyOf?.find((s) => s.type && s.type !== "null");
  return variant ? typeOf(variant) : undefined;
}

export function formFields(schema: JsonSchema): FormField[] {
  const required = new Set(schema.required ?? []);
  return Object.entries(schema.properties ?? {}).map(([name, prop]) => {
    const type = typeOf(prop);
    let kind: FieldKind = "json";
    if (prop.enum) kind = "enum";
    else if (type === "string" || type === "number" || type === "integer" || type === "boolean") kind = type;
    const defaultValue =
      prop.default === undefined ? "" : kind === "json" ? JSON.stringify(prop.default) : String(prop.default);
    return {
      name,
      kind,
      label: prop.title ?? name,
      description: prop.description ?? "",
      required: required.has(name),
      options: (prop.enum ?? []).map((v) => String(v)),
      defaultValue,
    };
  });
}

export class FormValueError extends Error {}

/** The JSON arguments of the form's values; empty optional fields are left out. */
export function formArguments(fields: FormField[], values: Record<string, string>): Record<string, unknown> {
  const args: Record<string, unknown> = {};
  for (const field of fields) {
    const raw = (values[field.name] ?? "").trim();
    if (raw === "") {
      if (field.required && field.kind !== "boolean") throw new FormValueError(`${field.label} is required`);
      if (field.kind !== "boolean") continue;
    }
    switch (field.kind) {
      case "number":
      case "integer": {
        const n = Number(raw);
        if (!Number.isFinite(n) || (field.kind === "integer" && !Number.isInteger(n)))
          throw new FormValueError(`${field.label} must be ${field.kind === "integer" ? "an integer" : "a number"}`);
        args[field.name] = n;
        break;
      }
      case "boolean":
        args[field.name] = raw === "true";
        break;
      case "json":
        try {
          args[field.name] = JSON.parse(raw);
        } catch {
          throw new FormValueError(`${field.label} must be JSON`);
        }
        break;
      default:
        args[field.name] = raw;
    }
  }
  return args;
}
