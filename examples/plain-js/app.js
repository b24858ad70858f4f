// The plain-JS example: connect with a dev token, keep `orders` live, render one <li> per row and touch only the row
// a change names, create and cancel orders with optimistic effects, and show typed errors.
import init, { Store, isMutationError } from "@subsignal/store";

const ORDER = "id owner customerName email items { sku quantity unitPriceCents } totalCents status version createdAt updatedAt expiresAt";

const ordersCollection = {
  name: "orders",
  subscription: `subscription($afterSeq: Int) { onOrderChanged(afterSeq: $afterSeq) { seq prevSeq op key version expired clientMutationId committedAtMs order { ${ORDER} } } }`,
  subscriptionField: "onOrderChanged",
  entityField: "order",
  snapshotQuery: `query($limit: Int, $nextToken: String) { listOrders(limit: $limit, nextToken: $nextToken) { items { ${ORDER} } nextToken seq } }`,
  snapshotField: "listOrders",
  descending: true, // UUIDv7 keys: newest first
};

const $ = (selector) => document.querySelector(selector);

await init();
const user = new URLSearchParams(location.search).get("user") ?? "alice";
const { token } = await (await fetch(`/dev/token?user=${user}`)).json();

const store = new Store({
  httpUrl: `${location.origin}/graphql`,
  wsUrl: `${location.origin.replace(/^http/, "ws")}/graphql`,
  token,
  persistKey: `subsignal-example-queue-${user}`,
});
store.watch(ordersCollection);

store.onStatus((status) => {
  $("#connection").textContent = status.connection.state;
  $("#pending").textContent = String(status.pendingMutations);
});

/** Renders one row into its <li>. */
function renderRow(li, order) {
  li.dataset.status = order.status;
  li.toggleAttribute("data-optimistic", String(order.id).startsWith("tmp-"));
  li.querySelector(".status").textContent = order.status;
  li.querySelector(".name").textContent = `${order.customerName} <${order.email}>`;
  li.querySelector(".total").textContent = order.totalCents == null ? "" : `$${(order.totalCents / 100).toFixed(2)}`;
  li.querySelector("button").disabled = order.status === "SHIPPED" || order.status === "CANCELLED";
}

function newRow(key) {
  const li = document.createElement("li");
  li.dataset.key = key;
  li.innerHTML = `<span class="status"></span><span class="name"></span><span class="total"></span><button>Cancel</button>`;
  li.querySelector("button").addEventListener("click", () => cancel(key));
  return li;
}

/** Puts the <li>s in the store's key order (only on insertions and removals). */
function renderKeys() {
  const list = $("#orders");
  const existing = new Map([...list.children].map((li) => [li.dataset.key, li]));
  const keys = store.keys("orders");
  const wanted = new Set(keys);
  for (const [key, li] of existing) if (!wanted.has(key)) li.remove();
  keys.forEach((key, i) => {
    let li = existing.get(key);
    if (!li) {
      li = newRow(key);
      renderRow(li, store.row("orders", key));
    }
    if (list.children[i] !== li) list.insertBefore(li, list.children[i] ?? null);
  });
}

store.onRow((collection, change) => {
  if (collection !== "orders") return;
  if (change.kind === "updated") {
    const li = $(`#orders li[data-key="${CSS.escape(change.key)}"]`);
    if (li) renderRow(li, store.row("orders", change.key));
  } else {
    renderKeys();
  }
});
store.connect();

function showError(e) {
  if (!isMutationError(e)) {
    $("#errors").textContent = String(e);
  } else if (e.kind === "validation") {
    $("#errors").textContent = "Invalid: " + e.fields.map((f) => `${f.field}: ${f.message}`).join("; ");
  } else if (e.kind === "conflict") {
    $("#errors").textContent = `Conflict: the order is now ${e.theirs?.status ?? "gone"}`;
  } else {
    $("#errors").textContent = e.message;
  }
}

$("#create").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const input = {
    customerName: String(form.get("customerName")),
    email: String(form.get("email")),
    items: [{ sku: "TEA", quantity: 2, unitPriceCents: 450 }],
  };
  $("#errors").textContent = "";
  try {
    await store.mutate({
      query: `mutation($input: CreateOrderInput!, $clientMutationId: ID) { createOrder(input: $input, clientMutationId: $clientMutationId) { ${ORDER} } }`,
      variables: { input },
      resultField: "createOrder",
      collection: "orders",
      optimistic: { kind: "upsert", row: { id: `tmp-${crypto.randomUUID()}`, status: "SUBMITTED", totalCents: 900, ...input } },
    });
  } catch (e) {
    showError(e);
  }
});

async function cancel(key) {
  const order = store.row("orders", key);
  if (!order) return;
  $("#errors").textContent = "";
  try {
    await store.mutate({
      query: `mutation($id: ID!, $v: Int!, $clientMutationId: ID) { cancelOrder(id: $id, expectedVersion: $v, clientMutationId: $clientMutationId) { ${ORDER} } }`,
      variables: { id: key, v: order.version },
      resultField: "cancelOrder",
      collection: "orders",
      optimistic: { kind: "patch", key, fields: { status: "CANCELLED" } },
    });
  } catch (e) {
    showError(e);
  }
}

// For tests and curious readers.
window.subsignal = { store };
