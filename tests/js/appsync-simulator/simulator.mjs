// AWS's AppSync simulator (`amplify-appsync-simulator`, what `amplify mock` runs) serving the API Amplify generates
// for `type Todo @model` with conflict detection on: listTodos and syncTodos (the delta query, `startedAt`),
// createTodo/updateTodo/deleteTodo bumping `_version` and `_lastChangedAt`, deletes kept as `_deleted` tombstones,
// and onCreateTodo/onUpdateTodo/onDeleteTodo through `@aws_subscribe` over AppSync's real-time protocol. The
// resolvers are AppSync's own shape (VTL mapping templates) over a Lambda data source that keeps the table in memory.
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { AmplifyAppSyncSimulator, AmplifyAppSyncSimulatorAuthenticationType } = require("amplify-appsync-simulator");

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

/** Starts the simulator on a free port; resolves with `{ addr, apiKey, gql, list, deltas, stop }`. */
export async function startSimulator() {
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
  const addr = `127.0.0.1:${port}`;
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
    list: () => [...table.values()].filter((t) => !t._deleted).sort((a, b) => a.id.localeCompare(b.id)),
    /** How many delta syncs (`syncTodos` with a `lastSync`) were asked for. */
    deltas: () => deltas,
    stop() {
      simulator.stop();
    },
  };
}
