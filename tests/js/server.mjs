// Starts a `subsignal serve` process on a free port for a JavaScript test, and stops it afterwards.
// The binary comes from SUBSIGNAL_BIN (set by `cargo xtask test`); there is no fallback, so a missing binary fails loudly.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

export async function startServer(extraArgs = []) {
  const bin = process.env.SUBSIGNAL_BIN;
  if (!bin) throw new Error("SUBSIGNAL_BIN is not set: run these tests through `cargo xtask test`");
  const dataDir = mkdtempSync(join(tmpdir(), "subsignal-js-"));
  const child = spawn(bin, ["serve", "--listen", "127.0.0.1:0", "--data-dir", dataDir, "--dev-tokens",
    "--step-delay-ms", "0", "--web", join(dataDir, "no-web"), ...extraArgs], {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, NO_COLOR: "1", RUST_LOG: "info" },
  });
  const addr = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("subsignal did not start listening within 20 s")), 20_000);
    child.on("exit", (code) => reject(new Error(`subsignal exited with ${code} before listening`)));
    createInterface({ input: child.stdout }).on("line", (line) => {
      const m = line.match(/listening on http:\/\/(\S+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
  });
  return {
    http: `http://${addr}`,
    ws: `ws://${addr}/graphql`,
    async token(user) {
      const res = await fetch(`http://${addr}/dev/token?user=${encodeURIComponent(user)}`);
      if (!res.ok) throw new Error(`dev token for ${user}: HTTP ${res.status}`);
      return (await res.json()).token;
    },
    async gql(token, query, variables = {}) {
      const res = await fetch(`http://${addr}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body: JSON.stringify({ query, variables }),
      });
      return res.json();
    },
    async stop() {
      child.kill("SIGTERM");
      await new Promise((r) => (child.exitCode !== null ? r() : child.on("exit", r)));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
