// Monaco, bundled locally: the editor core, Python highlighting and the editor worker — nothing from
// a CDN. Imported only by the editor route, so it is a separate lazily loaded chunk.

import * as monaco from "monaco-editor/esm/vs/editor/edcore.main.js";
import "monaco-editor/esm/vs/basic-languages/python/python.contribution.js";
import EditorWorker from "monaco-editor/esm/vs/editor/editor.worker?worker";

import type { ModuleDefinitions } from "../api/types";
import { buildCatalogue, completionsAt, hoverAt, type Suggestion } from "../lib/completions";

declare global {
  interface Window {
    MonacoEnvironment?: { getWorker(workerId: string, label: string): Worker };
  }
}

window.MonacoEnvironment = { getWorker: () => new EditorWorker() };

const KINDS: Record<Suggestion["kind"], monaco.languages.CompletionItemKind> = {
  function: monaco.languages.CompletionItemKind.Function,
  class: monaco.languages.CompletionItemKind.Class,
  method: monaco.languages.CompletionItemKind.Method,
  property: monaco.languages.CompletionItemKind.Property,
  value: monaco.languages.CompletionItemKind.Variable,
  module: monaco.languages.CompletionItemKind.Module,
};

let providers: monaco.IDisposable[] = [];

/** Registers completions and hovers for Python from the runtime's catalogue (replacing earlier ones). */
export function installDefinitions(modules: ModuleDefinitions[]): void {
  providers.forEach((p) => p.dispose());
  const catalogue = buildCatalogue(modules);
  providers = [
    monaco.languages.registerCompletionItemProvider("python", {
      triggerCharacters: ["."],
      provideCompletionItems(model, position) {
        const before = model.getValueInRange({
          startLineNumber: position.lineNumber,
          startColumn: 1,
          endLineNumber: position.lineNumber,
          endColumn: position.column,
        });
        const word = model.getWordUntilPosition(position);
        const range = new monaco.Range(position.lineNumber, word.startColumn, position.lineNumber, word.endColumn);
        const suggestions = completionsAt(before, catalogue).map((s) => ({
          label: s.label,
          kind: KINDS[s.kind],
          detail: s.detail,
          documentation: { value: s.documentation },
          insertText: s.label,
          range,
        }));
        return { suggestions };
      },
    }),
    monaco.languages.registerHoverProvider("python", {
      provideHover(model, position) {
        const word = model.getWordAtPosition(position);
        if (!word) return null;
        const before = model.getLineContent(position.lineNumber).slice(0, word.startColumn - 1);
        const text = hoverAt(before, word.word, catalogue);
        if (!text) return null;
        return {
          range: new monaco.Range(position.lineNumber, word.startColumn, position.lineNumber, word.endColumn),
          contents: [{ value: text }],
        };
      },
    }),
  ];
}

export { monaco };
