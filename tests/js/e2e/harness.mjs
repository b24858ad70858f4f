// The browser-test harness: a browser cannot start processes, so this script runs `subsignal serve` and puts a small
// proxy in front of it on a fixed port (`--port P`):
//
// - everything (HTTP and WebSocket upgrades) is forwarded to the current server, with permissive CORS headers added,
//   because the wasm-bindgen test page is served by wasm-bindgen-test-runner from another origin (test-only; the
//   server itself sends no CORS headers);
// - `POST /__harness/stop` stops the server (open WebSockets drop, new ones are refused) and `POST /__harness/start`
//   starts it again on the same data directory, so a test can check reconnect and catch-up.
//
// Run by `cargo xtask` (crates/xtask/src/wasm.rs), which reads the line "harness listening on http://…" and stops the
// harness by closing its stdin. Usage: SUBSIGNAL_BIN=… node harness.mjs --port 4123 [--step-delay-ms 0]
import http from "node:http";
import net from "node:net";
import { parseArgs } from "node:util";
import { Subsignal } from "./subsignal.mjs";

const { values } = parseArgs({ options: { port: { type: "string" }, "step-delay-ms": { type: "string" } } });
if (!values.port) throw new Error("--port is required");
const server = new Subsignal({ stepDelayMs: Number(values["step-delay-ms"] ?? 0) });
await server.start();

const cors = {
  "access-control-allow-origin": "*",
  "access-control-allow-methods": "GET, POST, OPTIONS",
  "access-control-allow-headers": "authorization, content-type",
  "access-control-max-age": "600",
};

let queue = Promise.resolve();
/** Runs harness commands one at a time. */
const serial = (f) => (queue = queue.then(f, f));

const proxy = http.createServer((req, res) => {
  if (req.method === "OPTIONS") {
    res.writeHead(204, cors).end();
    return;
  }
  if (req.url === "/__harness/stop" || req.url === "/__harness/start") {
    const stop = req.url.endsWith("stop");
    const what = async () => {
      await (stop ? server.stop() : server.start());
      console.log(stop ? "subsignal stopped" : `subsignal started again at ${server.addr}`);
    };
    serial(what).then(
      () => res.writeHead(200, { ...cors, "content-type": "application/json" }).end(JSON.stringify({ ok: true })),
      (e) => res.writeHead(500, cors).end(String(e)),
    );
    return;
  }
  if (!server.addr) {
    res.writeHead(502, cors).end("subsignal is stopped");
    return;
  }
  const [host, port] = server.addr.split(":");
  const upstream = http.request({ host, port, method: req.method, path: req.url, headers: req.headers }, (up) => {
    res.writeHead(up.statusCode ?? 502, { ...up.headers, ...cors });
    up.pipe(res);
  });
  upstream.on("error", (e) => {
    if (!res.headersSent) res.writeHead(502, cors);
    res.end(String(e));
  });
  req.pipe(upstream);
});

// WebSocket upgrades: replay the request line and headers to the server and splice the two sockets, so close frames
// pass through untouched and a stopped server drops the browser's socket.
proxy.on("upgrade", (req, socket, head) => {
  if (!server.addr) {
    socket.destroy();
    return;
  }
  const [host, port] = server.addr.split(":");
  const upstream = net.connect(Number(port), host, () => {
    let request = `${req.method} ${req.url} HTTP/1.1\r\n`;
    for (let i = 0; i < req.rawHeaders.length; i += 2) request += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
    upstream.write(request + "\r\n");
    if (head.length) upstream.write(head);
    upstream.pipe(socket);
    socket.pipe(upstream);
  });
  const drop = () => { upstream.destroy(); socket.destroy(); };
  upstream.on("error", drop);
  upstream.on("close", drop);
  socket.on("error", drop);
  socket.on("close", drop);
});

proxy.listen(Number(values.port), "127.0.0.1", () => {
  console.log(`harness listening on http://127.0.0.1:${values.port} (subsignal at ${server.addr})`);
});

// Stop everything when the parent closes our stdin (or on a signal).
const shutdown = async () => {
  proxy.close();
  await server.stop();
  process.exit(0);
};
process.stdin.on("end", shutdown);
process.stdin.resume();
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
