// Completions and hover documentation for `imp` and the importable modules, from the catalogue the
// control plane serves (GET /v1/runtime/definitions). Pure: the Monaco adapter is in editor/.

import type { Definition, ModuleDefinitions } from "../api/types";

export interface Suggestion {
  label: string;
  kind: Definition["kind"];
  detail: string;
  documentation: string;
}

export interface Catalogue {
  modules: Map<string, ModuleDefinitions>;
  classes: Map<string, Definition>; // imp's classes by name (Request, Database, Collection, …)
}

export function buildCatalogue(modules: ModuleDefinitions[]): Catalogue {
  const byName = new Map(modules.map((m) => [m.module, m]));
  const classes = new Map<string, Definition>();
  for (const d of byName.get("imp")?.members ?? []) if (d.kind === "class") classes.set(d.name, d);
  return { modules: byName, classes };
}

function suggestion(d: Definition, owner: string): Suggestion {
  const call = d.kind === "function" || d.kind === "method" || d.kind === "class";
  return {
    label: d.name,
    kind: d.kind,
    detail: `${owner}.${d.name}${call ? d.signature.replace(/^\(self,? ?/, "(") : ""}`,
    documentation: d.doc,
  };
}

/** What `qualifier` (the text before the last dot) names: a module's or a class's members. */
function membersOf(qualifier: string, catalogue: Catalogue): { owner: string; members: Definition[] } | null {
  const q = qualifier.replace(/\s+/g, "");
  if (/imp\.db\(\)(\.collection\([^()]*\)|\[[^\]]*\])$/.test(q)) return classMembers("Collection", catalogue);
  if (/imp\.db\(\)$/.test(q)) return classMembers("Database", catalogue);
  if (/imp\.fetch\([^()]*\)$/.test(q)) return classMembers("FetchResponse", catalogue);
  if (/^(req|request)$/.test(q)) return classMembers("Request", catalogue);
  const module = catalogue.modules.get(q);
  return module ? { owner: module.module, members: module.members } : null;
}

function classMembers(name: string, catalogue: Catalogue): { owner: string; members: Definition[] } | null {
  const cls = catalogue.classes.get(name);
  return cls ? { owner: name, members: cls.members } : null;
}

/** Completions at the end of `before` (the line's text up to the cursor). */
export function completionsAt(before: string, catalogue: Catalogue): Suggestion[] {
  const importing = /^\s*(import|from)\s+([\w.]*)$/.exec(before);
  if (importing) {
    const typed = importing[2];
    return [...catalogue.modules.values()]
      .filter((m) => m.module.startsWith(typed.slice(0, typed.lastIndexOf(".") + 1)))
      .map((m) => ({ label: m.module, kind: "module", detail: `import ${m.module}`, documentation: m.doc }));
  }
  const fromImport = /^\s*from\s+([\w.]+)\s+import\s+[\w, ]*$/.exec(before);
  if (fromImport) {
    const module = catalogue.modules.get(fromImport[1]);
    return module ? module.members.map((d) => suggestion(d, module.module)) : [];
  }
  const dotted = /([\w.]+(?:\([^()]*\)|\[[^\]]*\])*(?:\.\w+(?:\([^()]*\)|\[[^\]]*\])*)*)\.(\w*)$/.exec(before);
  if (dotted) {
    const found = membersOf(dotted[1], catalogue);
    return found ? found.members.map((d) => suggestion(d, found.owner)) : [];
  }
  const imp = catalogue.modules.get("imp");
  return imp && /(^|[^\w.])\w*$/.test(before)
    ? [{ label: "imp", kind: "module", detail: "import imp", documentation: imp.doc }]
    : [];
}

/** Hover text for `word` when `before` is the line's text up to the word's start (e.g. `x = imp.`). */
export function hoverAt(before: string, word: string, catalogue: Catalogue): string | null {
  const dotted = /([\w.]+(?:\([^()]*\)|\[[^\]]*\])*)\.$/.exec(before);
  if (dotted) {
    const found = membersOf(dotted[1], catalogue);
    const d = found?.members.find((m) => m.name === word);
    if (found && d) {
      const s = suggestion(d, found.owner);
      return `\`\`\`python\n${s.detail}\n\`\`\`\n\n${s.documentation}`.trim();
    }
  }
  const module = catalogue.modules.get(word);
  if (module) return `\`\`\`python\nmodule ${module.module}\n\`\`\`\n\n${module.doc}`.trim();
  return null;
}
