// The app's entry: one store for the page, created before React renders (it outlives StrictMode's double effects),
// with the `orders` collection watched, and a dev token from the demo server for `?user=` (default alice).
import init, { Store } from "@subsignal/store";
// Vite bundles the store's SharedWorker entry with the glue and wasm it imports, and gives its address.
import sharedWorkerUrl from "@subsignal/store/subsignal_store_worker.js?worker&url";
import { StoreProvider } from "@subsignal/react";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App";
import { ordersCollection } from "./documents";

await init(); // Fetches the store's wasm, which Vite bundles as an asset.
const params = new URLSearchParams(location.search);
const user = params.get("user") ?? "alice";
// `?shared=true` (or `worker`, `tab`): one connection and one store for every tab of the origin.
const shared = params.get("shared");
const store = new Store({
  shared: shared === "true" || (shared as "worker" | "tab" | null) || false,
  sharedWorkerUrl,
  httpUrl: `${location.origin}/graphql`,
  wsUrl: `${location.origin.replace(/^http/, "ws")}/graphql`,
  // Asked before connecting and whenever the server refuses the token.
  token: async () => {
    const answer: { token: string } = await (await fetch(`/dev/token?user=${encodeURIComponent(user)}`)).json();
    return answer.token;
  },
});
store.watch(ordersCollection);
store.connect();
// For tests and curious readers.
Object.assign(window, { subsignal: { store } });

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <StoreProvider store={store}>
      <App user={user} />
    </StoreProvider>
  </StrictMode>,
);
