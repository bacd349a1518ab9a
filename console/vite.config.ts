/// <reference types="vitest/config" />
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// The console is served by the control plane at "/"; during `npm run dev` the API is proxied.
export default defineConfig({
  plugins: [react()],
  server: {
    proxy: { "/v1": process.env.IMPRUN_URL ?? "http://127.0.0.1:8080" },
  },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 4096,
    rollupOptions: {
      output: {
        manualChunks(id) {
          // Only what the first page needs; Monaco stays in the editor route's lazy chunk.
          if (/node_modules\/(@mantine|react|react-dom|react-router|scheduler|@tanstack)\//.test(id)) return "vendor";
          return undefined;
        },
      },
    },
  },
  worker: { format: "es" },
  test: {
    environment: "jsdom",
    include: ["src/**/*.test.ts", "src/**/*.test.tsx"],
    setupFiles: ["src/test-setup.ts"],
  },
});
