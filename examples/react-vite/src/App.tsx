// The app: the connection, a form whose create is optimistic (and rolled back when the server refuses it), the live
// list of every order, a view of the open orders newest first, and a view the user can hold while reading it.
import { isMutationError } from "@subsignal/store";
import { useCollection, useCollectionState, useLiveView, useMutation, useRow, useStatus, useView } from "@subsignal/react";
import { useState, type FormEvent } from "react";
import { CancelOrderDocument, CreateOrderDocument, type Order } from "./documents";

const OPEN: Order["status"][] = ["SUBMITTED", "PAID", "PREPARING"];

export function App({ user }: { user: string }) {
  const [showHeld, setShowHeld] = useState(true);
  return (
    <main>
      <h1>Orders of {user}</h1>
      <Connection />
      <CreateOrder />
      <section>
        <h2>Open orders, newest first</h2>
        <OpenOrders />
      </section>
      <section>
        <h2>Latest five, holdable</h2>
        <label>
          <input id="show-held" type="checkbox" checked={showHeld} onChange={(e) => setShowHeld(e.target.checked)} />
          Show
        </label>
        {showHeld && <HeldOrders />}
      </section>
      <section>
        <h2>Every order, live</h2>
        <AllOrders />
      </section>
    </main>
  );
}

function Connection() {
  const status = useStatus();
  return (
    <p>
      Connection: <span id="connection">{status.connection.state}</span> · pending mutations:{" "}
      <span id="pending">{status.pendingMutations}</span>
    </p>
  );
}

/** Why the server refused a mutation, for people. */
function describe(error: Error): string {
  if (!isMutationError(error)) return error.message;
  switch (error.kind) {
    case "validation":
      return "Invalid: " + error.fields.map((f) => `${f.field}: ${f.message}`).join("; ");
    case "conflict":
      return "Conflict: the order changed meanwhile";
    default:
      return error.message;
  }
}

function CreateOrder() {
  const create = useMutation({ query: CreateOrderDocument, resultField: "createOrder", collection: "orders" });
  function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const input = {
      customerName: String(form.get("customerName")),
      email: String(form.get("email")),
      items: [{ sku: "TEA", quantity: 2, unitPriceCents: 450 }],
    };
    const now = new Date().toISOString();
    create.mutate({
      variables: { input },
      // Shown at once; replaced by the server's order, or rolled back if the server refuses it.
      optimistic: {
        kind: "upsert",
        row: { id: `tmp-${crypto.randomUUID()}`, status: "SUBMITTED", totalCents: 900, createdAt: now, ...input },
      },
    });
  }
  return (
    <form id="create" onSubmit={submit}>
      <input name="customerName" placeholder="Customer name" defaultValue="Ada" required />
      <input name="email" placeholder="Email" defaultValue="ada@example.com" />
      <button type="submit">Create order</button>
      <p id="errors" role="alert">
        {create.error ? describe(create.error) : ""}
      </p>
    </form>
  );
}

/** One order, read by key: it re-renders only when this order changes. */
function OrderItem({ id }: { id: string }) {
  const order = useRow<Order>("orders", id);
  const cancel = useMutation({ query: CancelOrderDocument, resultField: "cancelOrder", collection: "orders" });
  if (!order) return null;
  const done = order.status === "SHIPPED" || order.status === "DELIVERED" || order.status === "CANCELLED";
  return (
    <li data-key={id} data-status={order.status} data-optimistic={id.startsWith("tmp-") ? "" : undefined}>
      <span className="status">{order.status}</span> <span className="name">{order.customerName}</span>{" "}
      <button
        disabled={done || id.startsWith("tmp-")}
        onClick={() =>
          cancel.mutate({
            variables: { id, v: order.version },
            optimistic: { kind: "patch", key: id, fields: { status: "CANCELLED" } },
          })
        }
      >
        Cancel
      </button>
      {cancel.error && <span className="error"> {describe(cancel.error)}</span>}
    </li>
  );
}

function AllOrders() {
  const state = useCollectionState("orders");
  const orders = useCollection<Order>("orders");
  if (!state?.loaded) return <p id="loading">Loading…</p>;
  return (
    <>
      {state.lagMs !== null && <p id="lag">The newest change arrived {state.lagMs} ms after it committed.</p>}
      <ul id="all">
        {orders.map((o) => (
          <OrderItem key={o.id} id={o.id} />
        ))}
      </ul>
    </>
  );
}

function OrderLine({ order }: { order: Order }) {
  return (
    <li data-key={order.id} data-status={order.status} data-created={order.createdAt}>
      {order.status} {order.customerName}
    </li>
  );
}

function OpenOrders() {
  const open = useView<Order>("orders", { where: { status: { in: OPEN } }, orderBy: ["createdAt desc"] });
  return (
    <ul id="open">
      {open.map((o) => (
        <OrderLine key={o.id} order={o} />
      ))}
    </ul>
  );
}

function HeldOrders() {
  const [hold, setHold] = useState(false);
  const { rows, state } = useLiveView<Order>("orders", { orderBy: ["createdAt desc"], limit: 5 }, { hold });
  return (
    <>
      <button id="hold" onClick={() => setHold(!hold)}>
        {hold ? "Release" : "Hold"}
      </button>{" "}
      <span id="waiting">{state.hasPendingUpdates ? "changes waiting" : ""}</span>
      <ul id="held">
        {rows.map((o) => (
          <OrderLine key={o.id} order={o} />
        ))}
      </ul>
    </>
  );
}
