// AWS's AppSync simulator (`amplify-appsync-simulator`, what `amplify mock` runs) serving the API Amplify generates
// for `type Todo @model` with conflict detection on: listTodos and syncTodos (the delta query, `startedAt`),
// createTodo/updateTodo/deleteTodo bumping `_version` and `_lastChangedAt`, deletes kept as `_deleted` tombstones,
// and onCreateTodo/onUpdateTodo/onDeleteTodo through `@aws_subscribe` over AppSync's real-time protocol. The
// resolvers are AppSync's own shape (VTL mapping templates) over a Lambda data source that keeps the table in memory.
//
// The simulator runs in a child process of its own (this file, run directly), as `amplify mock` does: it leaks a
// keep-alive interval per connection (its connection_init sets up two and clears one), which would keep a test
// process alive forever. `startSimulator()` forks it and asks it for its table over the IPC channel.
import { fork } from "node:child_process";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";


const schema = `
  type Todo {
    id: ID!
    title: String!
    done: Boolean!
    _version: Int!
    _deleted: Boolean
    _lastChangedAt: AWSTimestamp!
  }
  type ModelTodoConnection { items: [Todo]! nextToken: String startedAt: AWSTimestamp }
  input CreateTodoInput { id: ID title: String! done: Boolean }
  input UpdateTodoInput { id: ID! title: String done: Boolean _version: Int }
  input DeleteTodoInput { id: ID! _version: Int }
  type Query {
    listTodos(limit: Int, nextToken: String): ModelTodoConnection
    syncTodos(limit: Int, nextToken: String, lastSync: AWSTimestamp): ModelTodoConnection
  }
  type Mutation {
    createTodo(input: CreateTodoInput!): Todo
    updateTodo(input: UpdateTodoInput!): Todo
    deleteTodo(input: DeleteTodoInput!): Todo
  }
  type Subscription {
    onCreateTodo: Todo @aws_subscribe(mutations: ["createTodo"])
    onUpdateTodo: Todo @aws_subscribe(mutations: ["updateTodo"])
    onDeleteTodo: Todo @aws_subscribe(mutations: ["deleteTodo"])
  }
  schema { query: Query mutation: Mutation subscription: Subscription }
`;

export const API_KEY = "da2-subsignal-simulator";

/** Serves the simulator in this process on a free port: `{ addr, list, deltas }`. */
async function serve() {
  const require = createRequire(import.meta.url);
  // The simulator loads the AWS SDK v2, which would announce its end of support in every test log.
  require("aws-sdk/lib/maintenance_mode_message").suppress = true;
  const { AmplifyAppSyncSimulator, AmplifyAppSyncSimulatorAuthenticationType } = require("amplify-appsync-simulator");
  // The table, deleted rows included (as Amplify's versioned tables keep them, for the delta query).
  const table = new Map();
  let nextId = 0;
  // Delta syncs asked for (a `lastSync`), counted once per sync.
  let deltas = 0;
  // The simulator maps AWSTimestamp to a 32-bit Int, too small for milliseconds: a logical clock stands in for
  // Amplify's `_lastChangedAt` / `startedAt` (only their order matters to the delta query).
  let clock = 1_000_000;
  const tick = () => ++clock;
  const page = (rows, { limit = 100, nextToken }) => {
    const sorted = rows.sort((a, b) => a.id.localeCompare(b.id)).filter((t) => !nextToken || t.id > nextToken);
    const items = sorted.slice(0, limit);
    return { items, nextToken: sorted.length > limit ? items.at(-1).id : null };
  };
  const fields = {
    listTodos: (args) => page([...table.values()].filter((t) => !t._deleted), args),
    syncTodos: (args) => {
      if (args.lastSync != null && !args.nextToken) deltas += 1;
      const startedAt = tick();
      const since = args.lastSync ?? -1;
      return { ...page([...table.values()].filter((t) => t._lastChangedAt > since), args), startedAt };
    },
    createTodo: ({ input }) => {
      const todo = { id: input.id ?? `todo-${String(++nextId).padStart(4, "0")}`, title: input.title, done: input.done ?? false, _version: 1, _deleted: null, _lastChangedAt: tick() };
      table.set(todo.id, todo);
      return todo;
    },
    updateTodo: ({ input }) => {
      const old = table.get(input.id);
      if (!old || old._deleted) throw new Error(`no todo ${input.id}`);
      const todo = { ...old, ...Object.fromEntries(Object.entries(input).filter(([k, v]) => v !== undefined && v !== null && !k.startsWith("_"))), _version: old._version + 1, _lastChangedAt: tick() };
      table.set(todo.id, todo);
      return todo;
    },
    deleteTodo: ({ input }) => {
      const old = table.get(input.id);
      if (!old || old._deleted) throw new Error(`no todo ${input.id}`);
      const todo = { ...old, _deleted: true, _version: old._version + 1, _lastChangedAt: tick() };
      table.set(todo.id, todo);
      return todo;
    },
  };
  const resolver = (typeName, fieldName) => ({
    kind: "UNIT",
    typeName,
    fieldName,
    dataSourceName: "todos",
    requestMappingTemplate: `{"version": "2018-05-29", "operation": "Invoke", "payload": {"field": "${fieldName}", "arguments": $util.toJson($ctx.arguments)}}`,
    responseMappingTemplate: "$util.toJson($ctx.result)",
  });
  const simulator = new AmplifyAppSyncSimulator({ port: 0, wsPort: 0 });
  simulator.init({
    schema: { content: schema },
    resolvers: [
      ...["listTodos", "syncTodos"].map((f) => resolver("Query", f)),
      ...["createTodo", "updateTodo", "deleteTodo"].map((f) => resolver("Mutation", f)),
    ],
    dataSources: [{ type: "AWS_LAMBDA", name: "todos", invoke: async ({ field, arguments: args }) => fields[field](args) }],
    appSync: {
      name: "subsignal-todos",
      defaultAuthenticationType: { authenticationType: AmplifyAppSyncSimulatorAuthenticationType.API_KEY },
      apiKey: API_KEY,
      additionalAuthenticationProviders: [],
    },
  });
  await simulator.start();
  const port = new URL(simulator.url).port;
  return {
    addr: `127.0.0.1:${port}`,
    list: () => [...table.values()].filter((t) => !t._deleted).sort((a, b) => a.id.localeCompare(b.id)),
    deltas: () => deltas,
  };
}

const self = fileURLToPath(import.meta.url);

if (process.argv[1] === self) {
  // The child: serve, tell the parent where, answer its questions, and end with it.
  const served = await serve();
  process.on("message", ({ id, ask }) => process.send({ id, value: served[ask]() }));
  process.on("disconnect", () => process.exit(0));
  process.send({ ready: served.addr });
}

/** Starts the simulator in a child process; resolves with `{ addr, apiKey, gql, list, deltas, stop }`. */
export async function startSimulator() {
  const child = fork(self, [], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const addr = await new Promise((resolve, reject) => {
    child.once("message", (m) => resolve(m.ready));
    child.once("exit", (code) => reject(new Error(`the AppSync simulator exited (${code}) before it listened`)));
  });
  const waiting = new Map();
  let next = 0;
  child.on("message", ({ id, value }) => {
    waiting.get(id)?.(value);
    waiting.delete(id);
  });
  const ask = (question) => new Promise((resolve) => {
    next += 1;
    waiting.set(next, resolve);
    child.send({ id: next, ask: question });
  });
  return {
    addr,
    apiKey: API_KEY,
    /** A GraphQL request with the API key, as another client would send it. */
    async gql(query, variables) {
      const res = await fetch(`http://${addr}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-api-key": API_KEY },
        body: JSON.stringify({ query, variables }),
      });
      return res.json();
    },
    /** The live rows, as listTodos would list them. */
    list: () => ask("list"),
    /** How many delta syncs (`syncTodos` with a `lastSync`) were asked for. */
    deltas: () => ask("deltas"),
    /** Ends the child. */
    stop: () => new Promise((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once("exit", resolve);
      child.kill();
    }),
  };
}
