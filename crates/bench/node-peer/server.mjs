// The Node peer of `cargo xtask bench`: what a developer would write instead of subsignal — graphql-ws + graphql-js
// over `ws`, with an in-memory pub/sub (no database), serving the same shape as examples/notes/schema.graphql's
// createNote / onCreateNote. Usage: node server.mjs PORT. Prints "listening on ws://127.0.0.1:PORT/graphql".
import { createServer } from "node:http";
import { randomUUID } from "node:crypto";
import { buildSchema } from "graphql";
import { WebSocketServer } from "ws";
import { useServer } from "graphql-ws/use/ws";

const schema = buildSchema(`
  enum Color { YELLOW BLUE GREEN }
  type ChecklistItem { text: String! done: Boolean! }
  type Note {
    id: ID! title: String! body: String color: Color! checklist: [ChecklistItem!] expiresAt: Int
    owner: String createdAt: String! updatedAt: String! version: Int!
  }
  input ChecklistItemInput { text: String! done: Boolean! }
  input CreateNoteInput { id: ID title: String! body: String color: Color! checklist: [ChecklistItemInput!] expiresAt: Int }
  type Query { getNote(id: ID!): Note }
  type Mutation { createNote(input: CreateNoteInput!): Note }
  type Subscription { onCreateNote: Note }
`);

// The in-memory pub/sub every graphql-ws tutorial builds: one queue per subscriber, an async iterator over it.
const subscribers = new Set();
function publish(value) {
  for (const push of subscribers) push(value);
}
function subscribe() {
  const queue = [];
  let wake = null;
  const push = (value) => {
    queue.push(value);
    if (wake) { wake(); wake = null; }
  };
  subscribers.add(push);
  return {
    [Symbol.asyncIterator]() { return this; },
    async next() {
      while (queue.length === 0) await new Promise((resolve) => (wake = resolve));
      return { value: queue.shift(), done: false };
    },
    async return() {
      subscribers.delete(push);
      return { value: undefined, done: true };
    },
  };
}

const notes = new Map();
const root = {
  getNote: ({ id }) => notes.get(id) ?? null,
  createNote: ({ input }) => {
    const now = new Date().toISOString();
    const note = { ...input, id: input.id ?? randomUUID(), owner: "bench", createdAt: now, updatedAt: now, version: 1 };
    notes.set(note.id, note);
    publish({ onCreateNote: note });
    return note;
  },
  onCreateNote: () => subscribe(),
};

const port = Number(process.argv[2] ?? 4200);
const server = createServer((_, res) => res.writeHead(404).end());
const wss = new WebSocketServer({ server, path: "/graphql" });
useServer({ schema, roots: { query: root, mutation: root, subscription: root } }, wss);
server.listen(port, "127.0.0.1", () => console.log(`listening on ws://127.0.0.1:${server.address().port}/graphql`));
