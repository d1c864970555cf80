// Builds the island into the Flask package's static folder under fixed names
// (builder.js, builder.css), so templates/builder.html links them without a manifest.
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";
import { fileURLToPath } from "node:url";

const out = fileURLToPath(new URL("../overture/web/static/builder", import.meta.url));

export default defineConfig({
  plugins: [react()],
  base: "/static/builder/",
  build: {
    outDir: out,
    emptyOutDir: true,
    sourcemap: false,
    cssCodeSplit: false,
    assetsInlineLimit: 0,
    lib: false,
    rollupOptions: {
      input: fileURLToPath(new URL("./src/main.jsx", import.meta.url)),
      output: {
        entryFileNames: "builder.js",
        chunkFileNames: "builder-[name].js",
        assetFileNames: (asset) => (asset.names?.[0]?.endsWith(".css") ? "builder.css" : "[name][extname]"),
      },
    },
  },
});
