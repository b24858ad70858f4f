// Interop: AWS's own AppSync client code (Amplify v6's `generateClient`, from the npm package `aws-amplify`, pinned)
// subscribes to subsignal's /graphql/realtime with an API key and with a JWT, and receives the worker's status changes;
// and to the onCreateNote that a server generates from examples/notes/schema.graphql, as it would to a real AppSync API.
//
// Amplify derives the real-time URL from the GraphQL endpoint: for a non-AWS host it appends `/realtime` (so
// http://host/graphql → /graphql/realtime) and always uses the wss:// scheme. These tests serve plain HTTP, so the
// WebSocket class given to Amplify (Node 20 has no global WebSocket) is `ws` with wss:// turned into ws://; a real
// deployment puts TLS in front instead. The file takes about 15 s more than its tests: Amplify arms an un-cleared
// 15 s connection_init timer (CONNECTION_INIT_TIMEOUT) at each handshake, which keeps Node alive until it fires.
import { test } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import { Amplify } from "aws-amplify";
import { generateClient } from "aws-amplify/api";
import { Hub } from "aws-amplify/utils";
import { startServer } from "./server.mjs";

class PlainWebSocket extends WebSocket {
  constructor(url, protocols) {
    super(String(url).replace(/^wss:/, "ws:"), protocols);
  }
}
globalThis.WebSocket = PlainWebSocket;

const API_KEY = "da2-subsignal-interop-key";
const SUBSCRIPTION = `subscription($after: Int) { onOrderChanged(afterSeq: $after) { seq prevSeq op order { id status owner } } }`;
const CREATE = `mutation($input: CreateOrderInput!) { createOrder(input: $input) { id status } }`;
const INPUT = { customerName: "Ada", email: "ada@example.com", items: [{ sku: "tea", quantity: 1, unitPriceCents: 450 }] };

/** Subscribes with Amplify; `statuses(id)` resolves with the statuses of order `id` once it reaches SHIPPED. */
function subscribe(client, options) {
  const seen = new Map(); // order id → statuses, recorded from the start (an event may beat the mutation's response)
  const waiting = new Map();
  let failed;
  const settle = (id) => {
    const statuses = seen.get(id) ?? [];
    if (statuses.at(-1) === "SHIPPED") waiting.get(id)?.resolve(statuses);
  };
  const subscription = client.graphql({ query: SUBSCRIPTION, variables: { after: 0 }, ...options }).subscribe({
    next: ({ data }) => {
      const change = data.onOrderChanged;
      if (change.op === "WATERMARK") return;
      seen.set(change.order.id, [...(seen.get(change.order.id) ?? []), change.order.status]);
      settle(change.order.id);
    },
    error: (e) => {
      failed = new Error(`subscription failed: ${JSON.stringify(e)}`);
      for (const { reject } of waiting.values()) reject(failed);
    },
  });
  return {
    seen,
    statuses(id) {
      const done = new Promise((resolve, reject) => {
        if (failed) return reject(failed);
        waiting.set(id, { resolve, reject });
        settle(id);
      });
      const timeout = new Promise((_, reject) =>
        setTimeout(() => reject(new Error(`timed out; saw ${JSON.stringify([...seen])}`)), 20_000).unref());
      return Promise.race([done, timeout]);
    },
    stop: () => subscription.unsubscribe(),
  };
}

async function withServer(run, args = []) {
  const server = await startServer(["--api-keys", `interop:${API_KEY}`, ...args]);
  Amplify.configure({
    API: { GraphQL: { endpoint: `${server.http}/graphql`, region: "us-east-1", defaultAuthMode: "apiKey", apiKey: API_KEY } },
  });
  try {
    await run(server, generateClient());
  } finally {
    await server.stop();
  }
}

test("Amplify subscribes with an API key and receives every worker step", async () => {
  await withServer(async (server, client) => {
    const token = await server.token("alice");
    const sub = subscribe(client, {});
    try {
      const created = await server.gql(token, CREATE, { input: INPUT });
      const statuses = await sub.statuses(created.data.createOrder.id);
      assert.deepEqual(statuses, ["SUBMITTED", "PAID", "PREPARING", "SHIPPED"]);
    } finally {
      sub.stop();
    }
  });
});

test("Amplify subscribes with a JWT (the Authorization field) and sees only its owner's orders", async () => {
  await withServer(async (server, client) => {
    const alice = await server.token("alice");
    const bob = await server.token("bob");
    // Lambda mode sends the token as-is in `Authorization`, which is what subsignal verifies.
    const sub = subscribe(client, { authMode: "lambda", authToken: alice });
    try {
      const bobs = await server.gql(bob, CREATE, { input: { ...INPUT, customerName: "Bob" } });
      const created = await server.gql(alice, CREATE, { input: INPUT });
      const statuses = await sub.statuses(created.data.createOrder.id);
      assert.deepEqual(statuses, ["SUBMITTED", "PAID", "PREPARING", "SHIPPED"]);
      assert.ok(!sub.seen.has(bobs.data.createOrder.id), "alice never sees bob's order");
      assert.deepEqual([...sub.seen.keys()], [created.data.createOrder.id]);
    } finally {
      sub.stop();
    }
  });
});

test("Amplify follows a generated onCreateNote of a schema with no Rust", async () => {
  const schema = new URL("../../examples/notes/schema.graphql", import.meta.url).pathname;
  await withServer(async (server, client) => {
    const alice = await server.token("alice");
    const bob = await server.token("bob");
    const seen = [];
    let arrived;
    const two = new Promise((resolve) => (arrived = resolve));
    // Amplify announces AppSync's start_ack on its Hub: from then on, every create reaches the subscription.
    const acked = new Promise((resolve) => {
      const stop = Hub.listen("api", ({ payload }) => {
        if (payload.event === "Subscription ack") {
          stop();
          resolve();
        }
      });
    });
    const subscription = client
      .graphql({ query: "subscription { onCreateNote { title owner color } }", authMode: "lambda", authToken: alice })
      .subscribe({
        next: ({ data }) => {
          seen.push(data.onCreateNote);
          if (seen.length === 2) arrived();
        },
        error: (e) => seen.push({ error: JSON.stringify(e) }),
      });
    const timeout = (what) =>
      new Promise((_, reject) => setTimeout(() => reject(new Error(`${what}; saw ${JSON.stringify(seen)}`)), 20_000).unref());
    try {
      await Promise.race([acked, timeout("no start_ack")]);
      // Every signed-in user reads every note in this schema ({allow: private, operations: [read]}).
      const CREATE_NOTE = "mutation($t: String!) { createNote(input: {title: $t, color: GREEN}) { id } }";
      await server.gql(bob, CREATE_NOTE, { t: "Bob's" });
      await server.gql(alice, CREATE_NOTE, { t: "Alice's" });
      await Promise.race([two, timeout("two notes did not arrive")]);
      assert.deepEqual(seen, [
        { title: "Bob's", owner: "bob", color: "GREEN" },
        { title: "Alice's", owner: "alice", color: "GREEN" },
      ]);
    } finally {
      subscription.unsubscribe();
    }
  }, ["--schema", schema]);
});
