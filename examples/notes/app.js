// The notes example: the same store as the order app, against the API a server generates from schema.graphql. Every
// signed-in user sees every note live; only a note's owner may rename it ({allow: owner} beside
// {allow: private, operations: [read]}), so renaming someone else's note shows the server's refusal.
import init, { Store, isMutationError } from "@subsignal/store";

const NOTE = "id owner title color version";

const notesCollection = {
  name: "notes",
  subscription: `subscription($afterSeq: Int) { onNoteChanged(afterSeq: $afterSeq) { seq prevSeq op key version expired clientMutationId note { ${NOTE} } } }`,
  subscriptionField: "onNoteChanged",
  entityField: "note",
  snapshotQuery: `query($limit: Int, $nextToken: String) { listNotes(limit: $limit, nextToken: $nextToken) { items { ${NOTE} } nextToken seq } }`,
  snapshotField: "listNotes",
};

const $ = (selector) => document.querySelector(selector);

await init();
const user = new URLSearchParams(location.search).get("user") ?? "alice";
$("#user").textContent = user;
const { token } = await (await fetch(`/dev/token?user=${user}`)).json();

const store = new Store({
  httpUrl: `${location.origin}/graphql`,
  wsUrl: `${location.origin.replace(/^http/, "ws")}/graphql`,
  token,
  persistKey: `subsignal-notes-queue-${user}`,
});
store.watch(notesCollection);
store.onStatus((status) => ($("#connection").textContent = status.connection.state));

function render() {
  const list = $("#notes");
  list.replaceChildren(
    ...store.keys("notes").map((key) => {
      const note = store.row("notes", key);
      const li = document.createElement("li");
      li.dataset.key = key;
      li.dataset.color = note.color;
      li.toggleAttribute("data-optimistic", String(note.id).startsWith("tmp-"));
      li.innerHTML = `<span class="title"></span><span class="owner"></span><button>Rename</button>`;
      li.querySelector(".title").textContent = note.title;
      li.querySelector(".owner").textContent = `by ${note.owner ?? user} · v${note.version ?? 0}`;
      li.querySelector("button").addEventListener("click", () => rename(key));
      return li;
    }),
  );
}
store.onRow((collection) => collection === "notes" && render());
store.connect();

function showError(e) {
  if (isMutationError(e) && e.kind === "validation") {
    $("#errors").textContent = "Invalid: " + e.fields.map((f) => `${f.field}: ${f.message}`).join("; ");
  } else if (isMutationError(e) && e.kind === "other") {
    $("#errors").textContent = `${e.code}: ${e.message}`;
  } else {
    $("#errors").textContent = String(e.message ?? e);
  }
}

$("#create").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const input = { title: String(form.get("title")), color: String(form.get("color")) };
  $("#errors").textContent = "";
  try {
    await store.mutate({
      query: `mutation($input: CreateNoteInput!, $clientMutationId: ID) { createNote(input: $input, clientMutationId: $clientMutationId) { ${NOTE} } }`,
      variables: { input },
      resultField: "createNote",
      collection: "notes",
      optimistic: { kind: "upsert", row: { id: `tmp-${crypto.randomUUID()}`, ...input } },
    });
    event.target.reset();
  } catch (e) {
    showError(e);
  }
});

async function rename(key) {
  const note = store.row("notes", key);
  const title = prompt("New title", note.title);
  if (!title) return;
  $("#errors").textContent = "";
  try {
    await store.mutate({
      query: `mutation($input: UpdateNoteInput!, $v: Int, $clientMutationId: ID) { updateNote(input: $input, expectedVersion: $v, clientMutationId: $clientMutationId) { ${NOTE} } }`,
      variables: { input: { id: key, title }, v: note.version },
      resultField: "updateNote",
      collection: "notes",
      optimistic: { kind: "patch", key, fields: { title } },
    });
  } catch (e) {
    showError(e);
  }
}

// For tests and curious readers.
window.subsignal = { store };
