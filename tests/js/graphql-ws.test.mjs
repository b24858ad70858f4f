// Interop: the `graphql-ws` reference client subscribes to subsignal over a real socket and receives the worker's
// status changes; its close-code handling agrees with ours.
import { createHmac } from "node:crypto";
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

// ---- RELIABILITY.md's cases with the reference client (and raw `ws` frames where the client cannot misbehave) ----

const SECRET = "js-test-secret-0123456789";
const b64url = (value) => Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64url");
function hs256(claims, secret = SECRET) {
  const body = `${b64url({ alg: "HS256", typ: "JWT" })}.${b64url(claims)}`;
  return `${body}.${createHmac("sha256", secret).update(body).digest("base64url")}`;
}
const claims = (sub, ttlSecs) => {
  const now = Math.floor(Date.now() / 1000);
  return { sub, iat: now, exp: now + ttlSecs, iss: "subsignal", aud: "subsignal" };
};
const client = (server, token, extra = {}) =>
  createClient({ url: server.ws, webSocketImpl: WebSocket, connectionParams: { Authorization: `Bearer ${token}` }, retryAttempts: 0, ...extra });
// The close event (or error) that ends a subscription.
const ending = (c, query = SUBSCRIPTION, variables = {}) =>
  new Promise((resolve) => c.subscribe({ query, variables }, { next: () => {}, error: resolve, complete: () => resolve("complete") }));

// Raw frames: the first close code the server sends after `frames`.
function rawClose(server, frames, delayMs = 0) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(server.ws, "graphql-transport-ws");
    ws.on("open", async () => {
      for (const f of frames) {
        ws.send(JSON.stringify(f));
        if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
      }
    });
    ws.on("close", (code) => resolve(code));
    ws.on("error", reject);
  });
}

test("cases 1-3: subscribe before ack 4401, no init 4408, second init 4429, duplicate id 4409 (raw and reference client)", async () => {
  const server = await startServer(["--ws-init-timeout-ms", "300", "--jwt-secret", SECRET]);
  const token = hs256(claims("alice", 600));
  try {
    assert.equal(await rawClose(server, [{ type: "subscribe", id: "1", payload: { query: SUBSCRIPTION } }]), 4401);
    assert.equal(await rawClose(server, []), 4408);
    const init = { type: "connection_init", payload: { Authorization: `Bearer ${token}` } };
    assert.equal(await rawClose(server, [init, init], 50), 4429);
    assert.equal(await rawClose(server, [init, { type: "nonsense" }], 50), 4400);
    // The reference client, made to reuse one id: the server closes 4409, which the client reports as fatal.
    const c = client(server, token, { generateID: () => "same" });
    try {
      const first = ending(c);
      const second = ending(c);
      const [a, b] = await Promise.all([first, second]);
      assert.ok([a.code, b.code].includes(4409), `got ${a.code} and ${b.code}`);
    } finally {
      await c.dispose();
    }
  } finally {
    await server.stop();
  }
});

test("case 6: alg none, a foreign secret and an expired token close 4403; a token expiring mid-connection ends it with 4403", async () => {
  const server = await startServer(["--jwt-secret", SECRET]);
  try {
    const none = `${b64url({ alg: "none", typ: "JWT" })}.${b64url(claims("alice", 600))}.`;
    for (const [what, token] of [["alg none", none], ["foreign secret", hs256(claims("alice", 600), "another-secret-entirely")], ["expired", hs256(claims("alice", -5))]]) {
      const c = client(server, token);
      try {
        const closed = await ending(c);
        assert.equal(closed.code, 4403, what);
      } finally {
        await c.dispose();
      }
    }
    const c = client(server, hs256(claims("alice", 2)));
    try {
      const started = Date.now();
      const closed = await ending(c);
      assert.equal(closed.code, 4403);
      assert.ok(Date.now() - started < 4000, `closed after ${Date.now() - started} ms`);
    } finally {
      await c.dispose();
    }
  } finally {
    await server.stop();
  }
});

test("case 5: bob, subscribed from the start of the log, receives none of alice's orders", async () => {
  const server = await startServer(["--jwt-secret", SECRET]);
  const alice = hs256(claims("alice", 600));
  const c = client(server, hs256(claims("bob", 600)));
  try {
    const seen = [];
    let bobWatermark = 0;
    c.subscribe({ query: SUBSCRIPTION, variables: { after: 0 } }, {
      next: ({ data }) => {
        const change = data.onOrderChanged;
        if (change.op === "WATERMARK") bobWatermark = change.seq;
        else seen.push(change.order.owner);
      },
      error: () => {},
      complete: () => {},
    });
    const created = await server.gql(alice, CREATE, { input: INPUT });
    assert.ok(created.data.createOrder.id);
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual(seen, []);
    assert.ok(bobWatermark > 0, "bob's cursor still moves, by watermarks");
  } finally {
    await c.dispose();
    await server.stop();
  }
});

test("case 9: a client mutation id replayed over the socket gives one order, one stream record, the same result", async () => {
  const server = await startServer(["--jwt-secret", SECRET]);
  const token = hs256(claims("alice", 600));
  // Not lazy: a lazy client closes its socket between the two operations.
  const c = client(server, token, { lazy: false });
  const MUTATE = `mutation($input: CreateOrderInput!, $m: ID) { createOrder(input: $input, clientMutationId: $m) { id version } }`;
  const run = () => new Promise((resolve, reject) => {
    let result;
    c.subscribe({ query: MUTATE, variables: { input: INPUT, m: "js-replay-1" } }, { next: (r) => (result = r), error: reject, complete: () => resolve(result) });
  });
  try {
    const first = await run();
    const second = await run();
    assert.deepEqual(second.data, first.data);
    const log = await server.gql(token, `{ orderChangesSince(afterSeq: 0) { changes { seq key op } } }`);
    const inserts = log.data.orderChangesSince.changes.filter((ch) => ch.op === "INSERT");
    assert.equal(inserts.length, 1);
    assert.equal(inserts[0].key, first.data.createOrder.id);
  } finally {
    await c.dispose();
    await server.stop();
  }
});
