// The web app's SharedWorker: it hosts the orders store for every tab of this origin (one WebSocket, one outbox;
// `StoreOptions::shared_worker` in web/src/app.rs). It runs the app's own wasm: Trunk names the wasm-bindgen glue and
// the wasm after their content, so the page passes both in this script's URL (`?glue=…&wasm=…`).
const waiting = [];
// Tabs that attach while the wasm loads wait here: a `connect` event is not sent twice.
self.onconnect = (event) => waiting.push(event.ports[0]);
const params = new URL(self.location.href).searchParams;
const app = await import(params.get("glue"));
await app.default({ module_or_path: params.get("wasm") });
self.onconnect = (event) => app.host_shared_worker_port(event.ports[0]);
for (const port of waiting.splice(0)) app.host_shared_worker_port(port);
