// A GraphQL server of the kind a front-end developer already runs (Apollo Server, GraphQL Yoga: graphql-js, the
// graphql-ws library and an in-memory pub/sub), for the store's entity-events and live-query sources. Todos publish
// the bare entity on onCreateTodo/onUpdateTodo/onDeleteTodo; `todos` is a live query that pushes the whole list after
// every write; listTodos pages AppSync-style ({ items nextToken }). HTTP answers CORS, so a page from another origin
// may call it. Every write bumps the todo's `version`.
import { createServer } from "node:http";
import { buildSchema, execute, parse, validate } from "graphql";
import { useServer } from "graphql-ws/use/ws";
import { WebSocketServer } from "ws";

const schema = buildSchema(`
  type Todo { id: ID! title: String! version: Int! }
  type TodoPage { items: [Todo!]! nextToken: String }
  type Query { listTodos(limit: Int, nextToken: String): TodoPage! }
  type Mutation {
    createTodo(title: String!): Todo!
    updateTodo(id: ID!, title: String!): Todo
    deleteTodo(id: ID!): Todo
  }
  type Subscription { onCreateTodo: Todo! onUpdateTodo: Todo! onDeleteTodo: Todo! todos: [Todo!]! }
`);

/** An in-memory pub/sub: each subscriber gets an async iterator of what is published on its topic. */
class PubSub {
  constructor() { this.topics = new Map(); }
  publish(topic, value) { for (const push of this.topics.get(topic) ?? []) push(value); }
  iterate(topic, initial) {
    const queue = initial === undefined ? [] : [initial];
    let wake = null;
    const push = (value) => { queue.push(value); wake?.(); };
    const subscribers = this.topics.get(topic) ?? new Set();
    subscribers.add(push);
    this.topics.set(topic, subscribers);
    return {
      [Symbol.asyncIterator]() { return this; },
      async next() {
        while (queue.length === 0) await new Promise((r) => (wake = r));
        wake = null;
        return { value: queue.shift(), done: false };
      },
      async return() { subscribers.delete(push); return { value: undefined, done: true }; },
    };
  }
}

export async function startPeer() {
  const todos = new Map();
  let nextId = 0;
  const pubsub = new PubSub();
  const list = () => [...todos.values()].sort((a, b) => a.id.localeCompare(b.id));
  const wrote = (topic, todo) => {
    pubsub.publish(topic, { [topic]: todo });
    pubsub.publish("todos", { todos: list() });
    return todo;
  };
  const root = {
    listTodos: ({ limit = 100, nextToken }) => {
      const after = list().filter((t) => !nextToken || t.id > nextToken);
      const items = after.slice(0, limit);
      return { items, nextToken: after.length > limit ? items.at(-1).id : null };
    },
    createTodo: ({ title }) => {
      const todo = { id: `t${String(++nextId).padStart(4, "0")}`, title, version: 1 };
      todos.set(todo.id, todo);
      return wrote("onCreateTodo", todo);
    },
    updateTodo: ({ id, title }) => {
      const old = todos.get(id);
      if (!old) return null;
      const todo = { ...old, title, version: old.version + 1 };
      todos.set(id, todo);
      return wrote("onUpdateTodo", todo);
    },
    deleteTodo: ({ id }) => {
      const old = todos.get(id);
      if (!old) return null;
      todos.delete(id);
      return wrote("onDeleteTodo", { ...old, version: old.version + 1 });
    },
    onCreateTodo: () => pubsub.iterate("onCreateTodo"),
    onUpdateTodo: () => pubsub.iterate("onUpdateTodo"),
    onDeleteTodo: () => pubsub.iterate("onDeleteTodo"),
    // A live query answers at once with the current result, then after every write.
    todos: () => pubsub.iterate("todos", { todos: list() }),
  };

  const cors = { "access-control-allow-origin": "*", "access-control-allow-headers": "content-type, authorization" };
  const http = createServer((req, res) => {
    if (req.method === "OPTIONS") return res.writeHead(204, cors).end();
    if (req.method !== "POST" || req.url !== "/graphql") return res.writeHead(404, cors).end();
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", async () => {
      const { query, variables } = JSON.parse(body);
      const document = parse(query);
      const errors = validate(schema, document);
      const result = errors.length ? { errors } : await execute({ schema, document, rootValue: root, variableValues: variables });
      res.writeHead(200, { "content-type": "application/json", ...cors }).end(JSON.stringify(result));
    });
  });
  const wss = new WebSocketServer({ server: http, path: "/graphql" });
  useServer({ schema, roots: { query: root, mutation: root, subscription: root } }, wss);
  await new Promise((resolve) => http.listen(0, "127.0.0.1", resolve));
  const addr = `127.0.0.1:${http.address().port}`;
  return {
    addr,
    /** Runs a GraphQL request against the server, as another client would. */
    async gql(query, variables) {
      const res = await fetch(`http://${addr}/graphql`, {
        method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query, variables }),
      });
      return res.json();
    },
    list,
    async stop() {
      for (const client of wss.clients) client.terminate();
      await new Promise((resolve) => { wss.close(); http.close(resolve); });
    },
  };
}
