// A TypeScript user of `@subsignal/store`, type-checked (strict) against the generated declarations by
// `cargo xtask test-browser` (`tsc --noEmit -p tests/js/e2e/tsconfig.json`). It is never run.
import init, {
  Store,
  View,
  Collection,
  isMutationError,
  type CollectionConfig,
  type ConnectionStatus,
  type HistoryAt,
  type HistoryError,
  type HistoryRange,
  type Guarantee,
  type Mutation,
  type TypedDocument,
  type RowChange,
  type Status,
  type StoreOptions,
  type Unsubscribe,
  type ViewSpec,
  type ViewState,
} from "@subsignal/store";

interface Order {
  id: string;
  status: "SUBMITTED" | "PAID" | "PREPARING" | "SHIPPED" | "CANCELLED";
  version: number;
}

export async function main(token: string): Promise<void> {
  await init();
  const options: StoreOptions = {
    httpUrl: "http://127.0.0.1:4000/graphql",
    wsUrl: "ws://127.0.0.1:4000/graphql",
    token,
    persistKey: "queue",
    connection: { backoffCapMs: 10_000 },
  };
  const store = new Store(options);
  // Behind `trunk serve`: the path names the protocol, and no subprotocol is offered.
  const viaTrunk: StoreOptions = { httpUrl: "/graphql", wsUrl: "ws://127.0.0.1:8080/graphql/ws", offerSubprotocol: false };
  void viaTrunk;
  const orders: CollectionConfig = {
    name: "orders",
    subscription: "subscription($afterSeq: Int) { onOrderChanged(afterSeq: $afterSeq) { seq prevSeq op key version expired order { id status version } } }",
    subscriptionField: "onOrderChanged",
    entityField: "order",
    snapshotQuery: "query($limit: Int, $nextToken: String) { listOrders(limit: $limit, nextToken: $nextToken) { items { id status version } nextToken seq } }",
    snapshotField: "listOrders",
    history: { maxEvents: 500, checkpointEvery: 50 },
    // Kept in IndexedDB (under persistKey): a reload shows the rows at once, then fetches only what changed.
    persist: true,
  };
  store.watch(orders);
  // Time travel: the rows as they were just after a seq, typed, each with the event that last changed it.
  const range: HistoryRange | null = store.history("orders");
  if (range) {
    const past: HistoryAt<Order> = store.at<Order>("orders", range.first);
    const statuses: Order["status"][] = past.rows.map((r) => r.row.status);
    const changedHere: string[] = past.rows.filter((r) => r.seq === past.seq && r.op !== "snapshot").map((r) => r.key);
    console.log(statuses, changedHere, past.changes.map((c) => c.op));
    try {
      store.at("orders", range.last + 1);
    } catch (e) {
      const error = e as HistoryError;
      if (error.kind === "outOfRange") console.log(error.first, error.last);
    }
  }
  // An Amplify API: entity events, listed AppSync-style, with the delta query.
  const todos: CollectionConfig = {
    name: "todos",
    source: "entityEvents",
    subscriptions: [
      { document: "subscription { onCreateTodo { id _version } }", field: "onCreateTodo", action: "upsert" },
      { document: "subscription($owner: String) { onDeleteTodo(owner: $owner) { id _version } }", field: "onDeleteTodo", action: "remove", variables: { owner: "alice" } },
    ],
    list: { document: "query($limit: Int, $nextToken: String) { listTodos(limit: $limit, nextToken: $nextToken) { items { id _version } nextToken } }", field: "listTodos" },
    delta: { document: "query($lastSync: AWSTimestamp) { syncTodos(lastSync: $lastSync) { items { id } nextToken startedAt } }", field: "syncTodos" },
    versionFields: ["_version"],
  };
  store.watch(todos);
  store.watch({ name: "top", source: "liveQuery", subscription: "subscription { todos { id } }", subscriptionField: "todos" });
  const promise: Guarantee | null = store.guarantee("todos");
  const resyncs: number | undefined = store.stats("todos")?.resyncs;
  console.log(promise, resyncs);

  const stop: Unsubscribe = store.onRow((collection: string, change: RowChange) => {
    if (change.kind === "removed") {
      const expired: boolean = change.expired;
      console.log(collection, change.key, expired);
    } else {
      const row: Order | null = store.row<Order>(collection, change.key);
      console.log(row?.status);
    }
  });
  store.onStatus((status: Status) => {
    const c: ConnectionStatus = status.connection;
    if (c.state === "reconnecting") console.log(c.attempt, c.retryAtMs);
    if (c.state === "failed") console.log(c.reason);
    const n: number = status.pendingMutations;
    console.log(n);
  });
  store.connect();

  const rows: Order[] = store.rows<Order>("orders");
  const keys: string[] = store.keys("orders");
  const first = rows[0];
  if (!first || keys.length === 0) return;

  const cancel: Mutation<Order> = {
    query: "mutation($id: ID!, $v: Int!, $clientMutationId: ID) { cancelOrder(id: $id, expectedVersion: $v, clientMutationId: $clientMutationId) { id status version } }",
    variables: { id: first.id, v: first.version },
    resultField: "cancelOrder",
    collection: "orders",
    optimistic: { kind: "patch", key: first.id, fields: { status: "CANCELLED" } },
    base: first,
    versionVariable: "v",
  };
  try {
    const result: Order = await store.mutate(cancel);
    console.log(result.status);
  } catch (e: unknown) {
    if (isMutationError(e)) {
      switch (e.kind) {
        case "validation":
          console.log(e.fields.map((f) => `${f.field}: ${f.code} ${f.message}`));
          break;
        case "conflict": {
          // A person resolves it: the diff says who changed what; keepMine/merge resend on top of theirs.
          const theirs = e.theirs as Order | null;
          console.log(theirs?.version, e.base, e.mine, e.code, e.theirsVersion);
          const both = e.diff.filter((d) => d.change === "conflict").map((d) => [d.field, d.mine, d.theirs]);
          console.log(both);
          const next: unknown = both.length === 0 ? await e.keepMine() : await e.merge({ status: "theirs", note: { value: "x" } });
          const shown: Record<string, unknown> | null = await e.takeTheirs();
          console.log(next, shown);
          break;
        }
        case "unauthorized":
          store.setToken("fresh");
          break;
        case "other":
          console.log(e.code ?? "no code", e.message);
          break;
      }
    }
  }
  // A live view: open orders, newest first, 20 of them, in the shape of useSyncExternalStore.
  const spec: ViewSpec = {
    where: { status: { in: ["SUBMITTED", "PAID"] }, or: [{ totalCents: { gte: 1000 } }, { "customer.vip": true }] },
    orderBy: ["createdAt desc", { field: "id", direction: "asc" }],
    limit: 20,
  };
  const view: View<Order> = store.view<Order>("orders", spec);
  const unsubscribe: Unsubscribe = view.subscribe(() => {
    const rows: readonly Order[] = view.getSnapshot();
    const state: ViewState = view.state();
    console.log(rows.length, state.total, state.held, state.hasPendingUpdates, view.keys());
  });
  view.hold();
  view.release();
  const loaded: boolean = view.state().loaded && !(store.collectionState("orders")?.stale ?? true);
  console.log(loaded, store.collectionState("orders")?.lastSeq, store.collectionState("orders")?.hasPendingUpdates);
  const lastVisit: boolean = store.collectionState("orders")?.restored ?? false;
  store.onRow((_, change, origin) => console.log(lastVisit, change.key, origin.kind === "restore"));
  // A typed document from graphql-codegen (client preset, documentMode "string"): result and variables flow through.
  class TypedDocumentString<TResult, TVariables> extends String implements TypedDocument<TResult, TVariables> {
    __apiType?: (variables: TVariables) => TResult;
  }
  const CancelDocument = new TypedDocumentString<{ cancelOrder: Order }, { id: string; v: number }>(
    "mutation($id: ID!, $v: Int!, $clientMutationId: ID) { cancelOrder(id: $id, expectedVersion: $v, clientMutationId: $clientMutationId) { id status version } }",
  );
  const typed: Order = await store.mutate({ query: CancelDocument, variables: { id: "o1", v: 3 }, resultField: "cancelOrder" });
  console.log(typed.status);
  // @ts-expect-error: the document's variables say `v` is a number
  await store.mutate({ query: CancelDocument, variables: { id: "o1", v: "3" }, resultField: "cancelOrder" });
  // @ts-expect-error: the document's result is an Order, not a string
  const wrong: string = await store.mutate({ query: CancelDocument, variables: { id: "o1", v: 3 }, resultField: "cancelOrder" });
  console.log(wrong);
  // Snapshots for useSyncExternalStore: a collection, one row, the status.
  const live: Collection<Order> = store.collection<Order>("orders");
  const stopAll: Unsubscribe = live.subscribe(() => console.log(live.getSnapshot().length));
  const stopRow: Unsubscribe = live.subscribeRow("o1", () => console.log(live.getRow("o1")?.status));
  const stopStatus: Unsubscribe = store.subscribe(() => console.log(store.getSnapshot().pendingMutations));
  console.log(live.state()?.loaded);
  stopAll();
  stopRow();
  stopStatus();
  live.free();
  // Abort a mutation, or discard a queued one.
  const controller = new AbortController();
  const pending: Promise<unknown> = store.mutate(cancel, { signal: controller.signal });
  controller.abort();
  pending.catch((e: unknown) => console.log(isMutationError(e) && e.kind === "discarded"));
  const dropped: boolean = store.discard(store.pendingMutations()[0]?.id ?? "");
  console.log(dropped);
  // Tokens from a provider, asked at connect and after a refusal.
  const refreshing = new Store({ ...options, token: async () => (await fetch("/token")).text() });
  refreshing.free();
  // One connection for every tab: a SharedWorker hosts (or, without one, this tab hosts or follows another).
  const shared = new Store({ ...options, shared: true });
  const role: "worker" | "host" | "follower" | null = shared.sharedRole;
  console.log(role);
  shared.free();
  const inTab = new Store({ ...options, shared: "tab" });
  inTab.free();
  const inWorker = new Store({ ...options, shared: "worker", sharedWorkerUrl: "/assets/subsignal_store_worker.js" });
  inWorker.free();
  unsubscribe();
  view.free();
  stop();
  store.setAuth({ Authorization: "Bearer other" });
  store.disconnect();
  store.free();
}
