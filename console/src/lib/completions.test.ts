import { describe, expect, it } from "vitest";

import type { ModuleDefinitions } from "../api/types";
import { buildCatalogue, completionsAt, hoverAt } from "./completions";

const modules: ModuleDefinitions[] = [
  {
    module: "imp",
    doc: "The platform SDK.",
    members: [
      { name: "log", kind: "function", signature: "(*args: Any) -> None", doc: "Log a line.", members: [] },
      { name: "db", kind: "function", signature: "() -> Database", doc: "", members: [] },
      {
        name: "Database",
        kind: "class",
        signature: "()",
        doc: "",
        members: [{ name: "collection", kind: "method", signature: "(self, name: str) -> Collection", doc: "A collection.", members: [] }],
      },
      {
        name: "Collection",
        kind: "class",
        signature: "(name: str)",
        doc: "",
        members: [{ name: "find_one", kind: "method", signature: "(self, filter=None)", doc: "One document.", members: [] }],
      },
      {
        name: "Request",
        kind: "class",
        signature: "()",
        doc: "",
        members: [{ name: "json", kind: "method", signature: "(self) -> Any", doc: "The body as JSON.", members: [] }],
      },
    ],
  },
  {
    module: "json",
    doc: "JSON encoder and decoder.",
    members: [{ name: "dumps", kind: "function", signature: "(obj, *, indent=None)", doc: "Serialize obj.", members: [] }],
  },
  { module: "urllib.parse", doc: "Parse URLs.", members: [{ name: "quote", kind: "function", signature: "(s)", doc: "", members: [] }] },
];
const catalogue = buildCatalogue(modules);
const labels = (before: string) => completionsAt(before, catalogue).map((s) => s.label);

describe("completionsAt", () => {
  it("completes a module's members after its name and a dot", () => {
    expect(labels("    imp.")).toEqual(["log", "db", "Database", "Collection", "Request"]);
    expect(labels("x = json.du")).toEqual(["dumps"]);
    expect(labels("urllib.parse.")).toEqual(["quote"]);
    expect(completionsAt("json.", catalogue)[0].detail).toBe("json.dumps(obj, *, indent=None)");
  });

  it("follows imp.db() to its database and collections, and req to the request", () => {
    expect(labels("imp.db().")).toEqual(["collection"]);
    expect(labels('users = imp.db().collection("users").')).toEqual(["find_one"]);
    expect(labels('imp.db()["users"].')).toEqual(["find_one"]);
    expect(labels("    data = req.")).toEqual(["json"]);
    expect(completionsAt("req.", catalogue)[0].detail).toBe("Request.json() -> Any");
  });

  it("offers importable modules after import and a module's names after from … import", () => {
    expect(labels("import ")).toEqual(["imp", "json", "urllib.parse"]);
    expect(labels("from json import ")).toEqual(["dumps"]);
  });

  it("offers nothing for unknown names", () => {
    expect(labels("os.")).toEqual([]);
    expect(labels("something.")).toEqual([]);
  });
});

describe("hoverAt", () => {
  it("documents a member and a module", () => {
    expect(hoverAt("    imp.", "log", catalogue)).toContain("imp.log(*args: Any) -> None");
    expect(hoverAt("    imp.", "log", catalogue)).toContain("Log a line.");
    expect(hoverAt("", "json", catalogue)).toContain("JSON encoder and decoder.");
    expect(hoverAt("", "nothing", catalogue)).toBeNull();
  });
});
