import { defineConfig } from "vite";

// React's JSX through esbuild (no plugin needed for a production build); relative asset
// paths, so dist/ can be served from any path of any origin.
export default defineConfig({
  base: "./",
  esbuild: { jsx: "automatic" },
  build: { target: "es2022" },
});
