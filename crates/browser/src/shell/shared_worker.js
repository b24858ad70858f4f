// A Rust app's SharedWorker (`StoreOptions::shared()`): its script is the app's own wasm-bindgen glue, and its name
// (`workerName`) says that glue, the app's wasm and the shared store's name. The glue imports this module, which in a
// worker so named makes the worker host the app's shared store (one WebSocket, one set of collections, one offline
// queue) for every tab of the origin. Tabs attach with the ports of `connect` events; a tab whose worker cannot host
// hears `failed` and elects a host tab instead (`shell/shared.rs`). In a page, or in any other worker, this module
// does nothing.

const PREFIX = "subsignal-app ";

/** The name of the worker that hosts the shared store `name` with the app at `glue` and `wasm`. */
export function workerName(glue, wasm, name) {
  // URLs hold no spaces: the first two words are theirs, the rest is the store's name.
  return `${PREFIX}${encodeURI(glue)} ${encodeURI(wasm)} ${name}`;
}

const app =
  typeof SharedWorkerGlobalScope === "function" && self instanceof SharedWorkerGlobalScope && self.name.startsWith(PREFIX)
    ? self.name.slice(PREFIX.length).split(" ", 2).map(decodeURI)
    : null;
if (app) {
  const [glue, wasm] = app;
  const waiting = [];
  // Until the app has loaded, ports wait: a `connect` event is not sent twice.
  let serve = (port) => waiting.push(port);
  self.addEventListener("connect", (event) => event.ports.forEach((port) => serve(port)));
  const fail = (port, why) => port.postMessage(JSON.stringify({ t: "failed", err: { message: String(why) } }));
  // The glue, once it has evaluated (it is importing this module now).
  import(glue)
    .then(async (bindings) => {
      let started = null;
      // The app's `main` runs here too, where there is no page: a Leptos app's `mount_to_body` throws. The wasm is
      // loaded all the same, and the store needs nothing of `main`; a wasm that did not load fails the attach below.
      await bindings.default({ module_or_path: wasm }).catch((e) => (started = e));
      return (port) => {
        try {
          bindings.attachSharedWorkerPort(port);
        } catch (e) {
          fail(port, started ?? e);
        }
      };
    })
    .catch((e) => (port) => fail(port, `the app's code did not load (${e})`))
    .then((served) => {
      serve = served;
      waiting.splice(0).forEach((port) => serve(port));
    });
}
