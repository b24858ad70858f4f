// Vite's defaults serve and bundle @subsignal/store's wasm. `base: "./"` makes the build's URLs relative, so that
// dist/ can be served from any folder (the end-to-end test serves a development build under /dev/). `npm run dev`
// proxies the API to the subsignal server at SUBSIGNAL_URL (default http://127.0.0.1:4000).
import { defineConfig } from "vite";

const server = process.env.SUBSIGNAL_URL ?? "http://127.0.0.1:4000";

export default defineConfig({
  base: "./",
  // Workers as ES modules, like the page (the store's SharedWorker imports its glue).
  worker: { format: "es" },
  server: {
    proxy: {
      "/graphql": { target: server, ws: true },
      "/dev/token": server,
    },
  },
});
