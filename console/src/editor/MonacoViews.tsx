// React wrappers of Monaco's code and diff editors (the editor route only).

import { useEffect, useRef } from "react";

import { monaco } from "./monaco";

export function DiffView({ original, modified, height = 420 }: { original: string; modified: string; height?: number }) {
  const host = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!host.current) return;
    const editor = monaco.editor.createDiffEditor(host.current, {
      readOnly: true,
      originalEditable: false,
      automaticLayout: true,
      renderSideBySide: true,
      minimap: { enabled: false },
      scrollBeyondLastLine: false,
    });
    const left = monaco.editor.createModel(original, "python");
    const right = monaco.editor.createModel(modified, "python");
    editor.setModel({ original: left, modified: right });
    return () => {
      editor.dispose();
      left.dispose();
      right.dispose();
    };
  }, [original, modified]);
  return <div ref={host} style={{ height, border: "1px solid var(--mantine-color-gray-3)" }} data-testid="diff-editor" />;
}
