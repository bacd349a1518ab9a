// Monaco's ESM entry points without their own typings: the editor core has the API's types.
declare module "monaco-editor/esm/vs/editor/edcore.main.js" {
  export * from "monaco-editor";
}
declare module "monaco-editor/esm/vs/basic-languages/python/python.contribution.js";
