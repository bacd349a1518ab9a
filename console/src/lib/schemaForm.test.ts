import { describe, expect, it } from "vitest";

import { FormValueError, formArguments, formFields } from "./schemaForm";

const schema = {
  type: "object",
  properties: {
    income: { type: "number", description: "yearly income" },
    years: { type: "integer", default: 1 },
    region: { type: "string", enum: ["eu", "us"] },
    verbose: { type: "boolean" },
    note: { anyOf: [{ type: "string" }, { type: "null" }], default: null },
    tags: { type: "array", items: { type: "string" } },
  },
  required: ["income"],
};

describe("formFields", () => {
  it("makes one field per property with its kind, requirement and default", () => {
    const fields = formFields(schema);
    expect(fields.map((f) => [f.name, f.kind, f.required])).toEqual([
      ["income", "number", true],
      ["years", "integer", false],
      ["region", "enum", false],
      ["verbose", "boolean", false],
      ["note", "string", false],
      ["tags", "json", false],
    ]);
    expect(fields[1].defaultValue).toBe("1");
    expect(fields[2].options).toEqual(["eu", "us"]);
    expect(fields[0].description).toBe("yearly income");
  });
});

describe("formArguments", () => {
  const fields = formFields(schema);
  it("converts values to the schema's types and leaves empty optional fields out", () => {
    expect(formArguments(fields, { income: "50000", years: "3", region: "eu", verbose: "true", note: "", tags: '["a"]' })).toEqual({
      income: 50000,
      years: 3,
      region: "eu",
      verbose: true,
      tags: ["a"],
    });
  });

  it("says which value is wrong", () => {
    expect(() => formArguments(fields, {})).toThrow(new FormValueError("income is required"));
    expect(() => formArguments(fields, { income: "x" })).toThrow("income must be a number");
    expect(() => formArguments(fields, { income: "1", years: "1.5" })).toThrow("years must be an integer");
    expect(() => formArguments(fields, { income: "1", tags: "[" })).toThrow("tags must be JSON");
  });
});
