// The editor route's chunk (Monaco included), fetched on demand or ahead of time when idle.

export const loadEditor = () => import("../pages/FunctionEditor");

/** Fetch and compile the editor's chunk once the browser has nothing else to do. */
export function prefetchEditorWhenIdle(): () => void {
  const idle = window.requestIdleCallback ?? ((run: () => void) => window.setTimeout(run, 1000));
  const cancel = window.cancelIdleCallback ?? window.clearTimeout;
  const handle = idle(() => void loadEditor());
  return () => cancel(handle);
}
