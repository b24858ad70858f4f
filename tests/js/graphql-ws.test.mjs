// Interop: the `graphql-ws` reference client subscribes to subsignal over a real socket and receives the worker's
// status changes; its close-code handling agrees with ours.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createClient } from "graphql-ws";
import WebSocket from "ws";
import { startServer } from "./server.mjs";

const SUBSCRIPTION = `subscription($after: Int) { onOrderChanged(afterSeq: $after) { seq prevSeq op order { id status owner } } }`;
const CREATE = `mutation($input: CreateOrderInput!) { createOrder(input: $input) { id status } }`;
const INPUT = { customerName: "Ada", email: "ada@example.com", items: [{ sku: "tea", quantity: 1, unitPriceCents: 450 }] };

test("graphql-ws receives every worker step of a new order, in order", async () => {
  const server = await startServer();
  const token = await server.token("alice");
  const client = createClient({ url: server.ws, webSocketImpl: WebSocket, connectionParams: { Authorization: `Bearer ${token}` }, retryAttempts: 0 });
  try {
    const statuses = [];
    let prev = 0;
    const done = new Promise((resolve, reject) => {
      client.subscribe({ query: SUBSCRIPTION, variables: { after: 0 } }, {
        next: ({ data, errors }) => {
          if (errors) return reject(new Error(JSON.stringify(errors)));
          const change = data.onOrderChanged;
          assert.equal(change.prevSeq, prev, "prevSeq chains the events");
          prev = change.seq;
          if (change.op === "WATERMARK") return;
          statuses.push(change.order.status);
          if (change.order.status === "SHIPPED") resolve();
        },
        error: reject,
        complete: () => {},
      });
    });
    const created = await server.gql(token, CREATE, { input: INPUT });
    assert.equal(created.data.createOrder.status, "SUBMITTED");
    await done;
    assert.deepEqual(statuses, ["SUBMITTED", "PAID", "PREPARING", "SHIPPED"]);
  } finally {
    await client.dispose();
    await server.stop();
  }
});

test("graphql-ws surfaces a typed CURSOR_EXPIRED error for a cursor ahead of the log", async () => {
  const server = await startServer();
  const token = await server.token("alice");
  const client = createClient({ url: server.ws, webSocketImpl: WebSocket, connectionParams: { Authorization: `Bearer ${token}` }, retryAttempts: 0 });
  try {
    const errors = await new Promise((resolve, reject) => {
      client.subscribe({ query: SUBSCRIPTION, variables: { after: 12345 } }, { next: () => reject(new Error("unexpected data")), error: resolve, complete: () => reject(new Error("completed without error")) });
    });
    assert.equal(errors[0].extensions.code, "CURSOR_EXPIRED");
  } finally {
    await client.dispose();
    await server.stop();
  }
});

test("graphql-ws sees a forged token refused with close code 4403", async () => {
  const server = await startServer();
  const client = createClient({ url: server.ws, webSocketImpl: WebSocket, connectionParams: { Authorization: "Bearer forged.token.value" }, retryAttempts: 0 });
  try {
    const closeEvent = await new Promise((resolve) => {
      client.subscribe({ query: SUBSCRIPTION }, { next: () => {}, error: resolve, complete: () => {} });
    });
    assert.equal(closeEvent.code, 4403);
  } finally {
    await client.dispose();
    await server.stop();
  }
});
