//! Faults under load: RELIABILITY's promises, end to end, while store clients write. `kill -9` of the server; SIGTERM
//! of one of two PostgreSQL-backed instances; PostgreSQL restarted; the stream worker killed mid-batch; the disk full
//! (SQLite on a small tmpfs) and the database read-only (PostgreSQL).
//!
//! The clients are [`StoreClient`]s: the store core the npm package runs in browsers, driven natively. Each places
//! orders one after another from its queue while the fault strikes; afterwards every order a client saw acknowledged
//! is on the server, every placement landed exactly once, every client's collection equals a fresh query, each
//! client applied every seq once (resuming by `afterSeq`, never by a new snapshot), and the change log holds each
//! order's insert and its three worker steps once each.
//!
//! Sizes and moments come from a seed, said when a run fails: rerun it with
//! `SUBSIGNAL_FAULT_SEED=<seed> cargo test -p subsignal-tests --test tests faults::`. `cargo xtask soak --minutes N`
//! loops these tests with fresh seeds. They wait for events (acknowledgements, log lines, readiness), never for a
//! while.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use futures_util::future::join_all;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use sqlx::Connection;
use subsignal_netsim::{NetsimConfig, RunningNetsim};
use subsignal_tests::store_shell::{create_order, StoreClient};
use subsignal_tests::{
    database_for, db_rows, eventually, fresh_postgres_schema, fresh_schema_in, get, leases, postgres_available,
    sample_input, Backend, Gql, RestartablePostgres, ServerProcess, Ws, POSTGRES_URL_VAR,
};

/// Whose orders the clients place (so every change is visible to every client).
const USER: &str = "alice";

/// The JWT secret instances of one database share.
const SECRET: &str = "a-secret-the-instances-share";

/// A fault run's randomness: `SUBSIGNAL_FAULT_SEED` when set, else a fresh seed; named on stderr if the run fails.
struct Seeded {
    test: &'static str,
    seed: u64,
    rng: StdRng,
}

impl Seeded {
    fn new(test: &'static str) -> Seeded {
        let seed = match std::env::var("SUBSIGNAL_FAULT_SEED") {
            Ok(seed) => seed.parse().expect("SUBSIGNAL_FAULT_SEED is a number"),
            Err(_) => rand::random(),
        };
        println!("{test}: SUBSIGNAL_FAULT_SEED={seed}");
        Seeded { test, seed, rng: StdRng::seed_from_u64(seed) }
    }
}

impl Drop for Seeded {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "\n{} FAILED with SUBSIGNAL_FAULT_SEED={}: rerun it with\n  SUBSIGNAL_FAULT_SEED={} cargo test -p \
                 subsignal-tests --test tests {}\n",
                self.test, self.seed, self.seed, self.test
            );
        }
    }
}

/// The front door the clients connect to, as a load balancer would be: `subsignal netsim` with a clean network,
/// whose upstream a test moves to another server.
async fn front_door(upstream: SocketAddr) -> RunningNetsim {
    subsignal_netsim::start(NetsimConfig { upstream: upstream.to_string(), control: None, ..NetsimConfig::default() })
        .await
        .expect("netsim starts")
}

/// Store clients placing [`USER`]'s orders, each from its own queue.
struct Load {
    clients: Vec<StoreClient>,
    /// Every order placement queued, by name: its client mutation id and its customer's name.
    queued: BTreeSet<String>,
}

impl Load {
    /// Starts 2 to 4 store clients (by the seed), spread over `servers` (`http://…`), waits until each is live, then
    /// queues 8 to 20 order placements on each. A client sends its queue one placement after another, as fast as the
    /// server answers.
    async fn start(run: &mut Seeded, servers: &[String], token: &str) -> Load {
        let clients: Vec<StoreClient> = (0..run.rng.gen_range(2..=4))
            .map(|i| StoreClient::start(&format!("c{i}"), &servers[i % servers.len()], token, run.rng.gen()))
            .collect();
        for client in &clients {
            client.until("its collection to be live", |s| s.live).await;
        }
        let mut queued = BTreeSet::new();
        for client in &clients {
            for i in 0..run.rng.gen_range(8..=20) {
                let name = format!("{}-{i}", client.name());
                client.mutate(create_order(&name));
                queued.insert(name);
            }
        }
        Load { clients, queued }
    }

    /// A moment to strike, by the seed: after a quarter to three quarters of the placements were acknowledged.
    fn strike_after(&self, run: &mut Seeded) -> usize {
        run.rng.gen_range(self.queued.len() / 4..=self.queued.len() * 3 / 4)
    }

    /// The ids of the orders whose placement the clients have seen acknowledged.
    async fn acknowledged(&self) -> BTreeSet<String> {
        let mut ids = BTreeSet::new();
        for client in &self.clients {
            let state = client.state().await;
            ids.extend(state.acknowledged.iter().map(|(_, order)| order["id"].as_str().unwrap().to_owned()));
        }
        ids
    }

    /// Waits until the clients have seen `n` placements acknowledged, in all.
    async fn until_acknowledged(&self, n: usize) {
        eventually(&format!("{n} acknowledged placements"), || async {
            (self.acknowledged().await.len() >= n).then_some(())
        })
        .await;
    }

    /// After the fault: waits until every placement settled and the worker shipped every order, and each client
    /// caught up, then checks what RELIABILITY promises. `server` is a client of a server that runs now,
    /// `acknowledged_before` what the clients saw acknowledged before the fault, `placed_by_hand` the orders the test
    /// placed itself meanwhile.
    async fn check(&self, server: &Gql, acknowledged_before: &BTreeSet<String>, placed_by_hand: &[String]) {
        for client in &self.clients {
            client.until("every placement settled", |s| s.pending == 0).await;
        }
        let mut expected = self.queued.clone();
        expected.extend(placed_by_hand.iter().cloned());
        let orders = eventually("every order shipped", || async {
            let orders = list_orders(server).await;
            let shipped = orders.len() >= expected.len() && orders.iter().all(|o| o["status"] == "SHIPPED");
            shipped.then_some(orders)
        })
        .await;
        let names: BTreeSet<String> = orders.iter().map(|o| o["customerName"].as_str().unwrap().to_owned()).collect();
        assert_eq!(orders.len(), names.len(), "no placement landed twice");
        assert_eq!(names, expected, "every placement landed, once");
        let ids: BTreeSet<String> = orders.iter().map(|o| o["id"].as_str().unwrap().to_owned()).collect();
        let lost: Vec<&String> = acknowledged_before.difference(&ids).collect();
        assert!(lost.is_empty(), "orders acknowledged before the fault are gone: {lost:?}");
        let mut acknowledged = BTreeSet::new();
        for client in &self.clients {
            let who = client.name();
            let state = client.until("its rows to equal a fresh query", |s| s.rows == orders).await;
            assert_eq!(state.refused, [], "{who}: no placement refused");
            acknowledged.extend(state.acknowledged.iter().map(|(name, _)| name.clone()));
            state.assert_each_seq_applied_once(who);
        }
        assert_eq!(acknowledged, self.queued, "every placement acknowledged once settled");
        assert_each_order_stepped_once(server, &expected).await;
    }
}

/// Every order `client` may see, by id, with the fields store clients keep.
async fn list_orders(client: &Gql) -> Vec<Value> {
    let query = "query($t: String) { listOrders(limit: 1000, nextToken: $t) { items { id owner customerName status \
                 version } nextToken } }";
    let mut orders = Vec::new();
    let mut token = Value::Null;
    loop {
        let page = client.data(query, json!({"t": token})).await["listOrders"].take();
        orders.extend(page["items"].as_array().unwrap().iter().cloned());
        token = page["nextToken"].clone();
        if token.is_null() {
            return orders;
        }
    }
}

/// Checks the change log through `client`: gap-free seqs from 1, and for each order, named `names`, its insert and
/// the worker's three steps, once each and in order.
async fn assert_each_order_stepped_once(client: &Gql, names: &BTreeSet<String>) {
    let query = "query($a: Int!) { orderChangesSince(afterSeq: $a, limit: 1000) { changes { seq op key order { \
                 customerName status } } lastSeq hasMore } }";
    let mut records = Vec::new();
    let mut after = 0;
    loop {
        let page = client.data(query, json!({"a": after})).await["orderChangesSince"].take();
        records.extend(page["changes"].as_array().unwrap().iter().cloned());
        after = page["lastSeq"].as_i64().unwrap();
        if page["hasMore"] == false {
            break;
        }
    }
    let seqs: Vec<i64> = records.iter().map(|r| r["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=records.len() as i64).collect::<Vec<_>>(), "the change log is gap-free");
    let mut steps: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for record in &records {
        let name = record["order"]["customerName"].as_str().unwrap().to_owned();
        let step = format!("{} {}", record["op"].as_str().unwrap(), record["order"]["status"].as_str().unwrap());
        steps.entry(name).or_default().push(step);
    }
    assert_eq!(steps.keys().cloned().collect::<BTreeSet<_>>(), *names);
    for (name, steps) in steps {
        assert_eq!(
            steps,
            ["INSERT SUBMITTED", "MODIFY PAID", "MODIFY PREPARING", "MODIFY SHIPPED"],
            "{name}: each status step once, in order"
        );
    }
}

/// Arguments naming `database` (nothing for SQLite), after `args`.
fn with_database<'a>(args: &[&'a str], database: &'a Option<String>) -> Vec<&'a str> {
    let mut all = args.to_vec();
    all.extend(database.iter().flat_map(|url| ["--database", url.as_str()]));
    all
}

/// `kill -9` of the server while store clients write, then a restart on the same database: nothing a client saw
/// acknowledged is lost, the placements in flight land once (their replay is recognised by client mutation id), and
/// every client, back through the same front door, resumes by `afterSeq` to the server's state.
async fn kill_9_under_write_load_loses_nothing_acknowledged(backend: Backend) {
    let mut run = Seeded::new("faults::kill_9_under_write_load_loses_nothing_acknowledged");
    let dir = tempfile::tempdir().unwrap();
    let database = database_for(backend).await;
    // The dead instance's worker lease lapses within a second for the new one.
    let args = with_database(&["--worker-lease-ms", "1000"], &database);
    let server = ServerProcess::start(dir.path(), &args).await;
    let front = front_door(server.addr).await;
    let http = format!("http://{}", front.addr);
    let token = server.dev_token(USER).await;
    let load = Load::start(&mut run, &[http], &token).await;
    load.until_acknowledged(load.strike_after(&mut run)).await;

    server.kill9().await;
    let acknowledged = load.acknowledged().await;
    let server = ServerProcess::start(dir.path(), &args).await;
    front.set_upstream(&server.addr.to_string());
    load.check(&server.client(USER).await, &acknowledged, &[]).await;
}

/// SIGTERM of one of two instances on one PostgreSQL, under load: the load balancer (netsim) sends new connections
/// to the other; the stopped instance's clients reconnect there and resume by `afterSeq`, nothing lost or doubled; its
/// worker lease, an hour long, moves to the other instance at once.
#[tokio::test]
async fn sigterm_of_one_of_two_instances_moves_its_clients_and_its_lease_to_the_other() {
    if !postgres_available() {
        return;
    }
    let mut run = Seeded::new("faults::sigterm_of_one_of_two_instances_moves_its_clients_and_its_lease_to_the_other");
    let database = Some(fresh_postgres_schema().await);
    let args = with_database(&["--jwt-secret", SECRET, "--worker-lease-ms", "3600000"], &database);
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = ServerProcess::start(dir_a.path(), &args).await;
    let a_pid = a.pid();
    eventually("A holding the worker's lease", || holds_the_worker_lease(&database, a_pid)).await;
    let b = ServerProcess::start(dir_b.path(), &args).await;
    let front = front_door(a.addr).await;
    let token = a.dev_token(USER).await;
    let load = Load::start(&mut run, &[format!("http://{}", front.addr)], &token).await;
    load.until_acknowledged(load.strike_after(&mut run)).await;

    // The load balancer takes A out of rotation, and the orchestrator stops it.
    front.set_upstream(&b.addr.to_string());
    a.signal("TERM");
    assert!(a.exited().await.success(), "A drains and exits 0");
    let acknowledged = load.acknowledged().await;
    eventually("B holding the worker's lease", || holds_the_worker_lease(&database, b.pid())).await;
    load.check(&b.client(USER).await, &acknowledged, &[]).await;
    for client in &load.clients {
        let state = client.state().await;
        assert!(state.sockets >= 2, "{}: moved to B on a new connection", client.name());
    }
}

/// PostgreSQL stopped (fast, as an operator's restart, or immediate, as a crash: by the seed) and started again
/// under load from clients of two instances: both instances' `/readyz` say 503 while it is down and 200 after, their
/// connections come back by themselves, and the clients' subscriptions resume with nothing lost or doubled.
#[tokio::test]
async fn postgres_restarted_under_load_instances_reconnect_and_subscriptions_resume() {
    let Some(postgres) = RestartablePostgres::from_env() else { return };
    let mut run = Seeded::new("faults::postgres_restarted_under_load_instances_reconnect_and_subscriptions_resume");
    let database = Some(fresh_schema_in(&postgres.url).await);
    let args = with_database(&["--jwt-secret", SECRET, "--worker-lease-ms", "1000"], &database);
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = ServerProcess::start(dir_a.path(), &args).await;
    let b = ServerProcess::start(dir_b.path(), &args).await;
    let servers = [format!("http://{}", a.addr), format!("http://{}", b.addr)];
    // Clients on both: those on A learn of B's commits from the database alone, and the other way round.
    let load = Load::start(&mut run, &servers, &a.dev_token(USER).await).await;
    load.until_acknowledged(load.strike_after(&mut run)).await;

    let mode = ["fast", "immediate"][run.rng.gen_range(0..2)];
    let stopped = postgres.stop(mode).await;
    let not_ready = join_all(servers.iter().map(|server| {
        eventually("/readyz saying 503", move || async move {
            let (status, body) = get(&format!("{server}/readyz")).await;
            (status == 503).then_some(body)
        })
    }))
    .await;
    for reason in not_ready {
        assert!(reason.starts_with("not ready: the database"), "{reason}");
    }
    let acknowledged = load.acknowledged().await;
    stopped.start().await;
    join_all(servers.iter().map(|server| {
        eventually("/readyz saying 200 again", move || async move {
            (get(&format!("{server}/readyz")).await.0 == 200).then_some(())
        })
    }))
    .await;
    load.check(&a.client(USER).await, &acknowledged, &[]).await;
}

/// The order worker killed mid-batch: its checkpoint still before the batch, some of the batch's steps written. A
/// restarted worker redoes the batch from the checkpoint; the steps already written are recognised (by the seq they
/// answer) and not taken again, so no order skips or repeats a status.
async fn a_worker_killed_mid_batch_resumes_from_its_checkpoint(backend: Backend) {
    let mut run = Seeded::new("faults::a_worker_killed_mid_batch_resumes_from_its_checkpoint");
    let dir = tempfile::tempdir().unwrap();
    let database = database_for(backend).await;
    let args = with_database(&["--worker-lease-ms", "500"], &database);
    let orders: i64 = run.rng.gen_range(4..=10);
    // Orders placed while the worker waits a minute on its first record; then that server is killed, so the next
    // worker finds every order after its checkpoint, in one batch.
    let first = ServerProcess::start(dir.path(), &[&args[..], &["--step-delay-ms", "60000"]].concat()).await;
    let alice = first.client(USER).await;
    let names: BTreeSet<String> = (0..orders).map(|i| format!("order-{i}")).collect();
    for name in &names {
        alice.create_order(name, Some(name)).await;
    }
    first.kill9().await;

    // One step at a time, each after 100 ms: killed once `k` of the batch's steps are written.
    let worker = ["--step-delay-ms", "100", "--worker-parallelism", "1", "--worker-batch-size", "1000"];
    let second = ServerProcess::start(dir.path(), &[&args[..], &worker].concat()).await;
    let mut ws = Ws::connect(&format!("ws://{}/graphql", second.addr), &second.dev_token(USER).await).await;
    ws.subscribe_changes("steps", Some(orders)).await;
    let k = run.rng.gen_range(1..=orders - 2);
    for _ in 0..k {
        assert_eq!(ws.next_real_change().await["op"], "MODIFY");
    }
    second.kill9().await;
    let checkpoint = "SELECT COALESCE(MAX(seq), 0) FROM stream_checkpoints WHERE consumer = 'order-processor'";
    let checkpoint = db_count(&database, dir.path(), checkpoint).await;
    let steps = db_count(&database, dir.path(), "SELECT COUNT(*) FROM change_log WHERE op = 'MODIFY'").await;
    assert_eq!(checkpoint, 0, "killed before the batch's checkpoint");
    assert!(steps >= k && steps < orders, "killed mid-batch: {steps} of {orders} steps written");

    let third = ServerProcess::start(dir.path(), &args).await;
    let alice = third.client(USER).await;
    eventually("every order shipped", || async {
        list_orders(&alice).await.iter().all(|o| o["status"] == "SHIPPED").then_some(())
    })
    .await;
    assert_each_order_stepped_once(&alice, &names).await;
    assert_eq!(db_count(&database, dir.path(), "SELECT COUNT(*) FROM dead_letters").await, 0);
}

/// One number read with `sql` from the database of a server (`database`, or SQLite in `dir`).
async fn db_count(database: &Option<String>, dir: &Path, sql: &str) -> i64 {
    let rows: Vec<(i64,)> = db_rows(database, dir, sql).await;
    rows[0].0
}

/// Whether the server with process id `pid` holds the order worker's lease in `database` now.
async fn holds_the_worker_lease(database: &Option<String>, pid: u32) -> Option<()> {
    let holder = format!("{pid}-");
    let leases = leases(database, Path::new("")).await;
    leases.iter().any(|(name, by, held)| name == "order-processor" && *held && by.starts_with(&holder)).then_some(())
}

subsignal_tests::on_both_backends!(
    kill_9_under_write_load_loses_nothing_acknowledged,
    a_worker_killed_mid_batch_resumes_from_its_checkpoint,
);

/// Places orders by hand, named `by-hand-0`, `by-hand-1`…, until one is refused because `why`; gives the names of
/// those placed and of the refused one. Every refusal must be `UNAVAILABLE` (a code a client can act on: retry
/// later) and say why; a refusal for another reason of that kind (a connection the fault cut, say) is retried.
async fn place_until_refused(server: &ServerProcess, why: &str) -> (Vec<String>, String) {
    let client = server.client(USER).await;
    let create = "mutation($i: CreateOrderInput!, $m: ID) { createOrder(input: $i, clientMutationId: $m) { id } }";
    let mut placed = Vec::new();
    for _ in 0..5_000 {
        let name = format!("by-hand-{}", placed.len());
        let answer = client.run(create, json!({"i": sample_input(&name), "m": name})).await;
        let Some(error) = answer.get("errors").map(|errors| &errors[0]) else {
            placed.push(name);
            continue;
        };
        if error["extensions"]["code"] != "UNAVAILABLE" {
            let log = server.log().join("\n");
            panic!("refused without a code a client can act on (UNAVAILABLE): {answer}\nthe server's log:\n{log}");
        }
        let message = error["message"].as_str().unwrap();
        assert!(message.contains("Retry later"), "{message}");
        if message.contains(why) {
            return (placed, name);
        }
    }
    panic!("no write was refused because {why}");
}

/// Places the order `name` again, with its client mutation id: it lands.
async fn placed_again(client: &Gql, name: String) -> String {
    let order = client.create_order(&name, Some(&name)).await;
    assert_eq!(order["customerName"], name.as_str());
    name
}

/// A tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`mount -t tmpfs -o size=…`), or fails the test saying why: it needs root (the test
    /// machines run the tests as root).
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(out) if out.status.success() => Tmpfs(dir),
            Ok(out) => panic!(
                "cannot mount a {size} tmpfs at {} for the disk-full test: {}. The test needs root (CAP_SYS_ADMIN) to \
                 mount one; run the suite as root, as its CI does.",
                dir.path().display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            Err(e) => panic!("cannot run mount for the disk-full test's tmpfs: {e}"),
        }
    }

    fn path(&self) -> &Path {
        self.0.path()
    }

    /// Fills every free byte with a file; gives the file.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let filler = self.path().join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        for chunk in [1 << 20, 4096, 1] {
            let bytes = vec![0u8; chunk];
            while file.write_all(&bytes).is_ok() {}
        }
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazily: a server process may still hold its files while it is being killed.
        let _ = Command::new("umount").arg("-l").arg(self.path()).status();
    }
}

/// SQLite on a small tmpfs that fills up under load: writes are refused with `UNAVAILABLE` naming the full disk (the
/// store clients keep theirs queued), nothing acknowledged is lost, and once space returns the queued writes land
/// and the worker goes on, no step skipped or doubled.
#[tokio::test]
async fn a_full_disk_refuses_writes_with_unavailable_and_the_server_recovers_when_space_returns() {
    let mut run =
        Seeded::new("faults::a_full_disk_refuses_writes_with_unavailable_and_the_server_recovers_when_space_returns");
    let disk = Tmpfs::mount("32m");
    let server = ServerProcess::start(disk.path(), &["--worker-lease-ms", "1000"]).await;
    let http = format!("http://{}", server.addr);
    let load = Load::start(&mut run, &[http], &server.dev_token(USER).await).await;
    load.until_acknowledged(load.strike_after(&mut run)).await;

    let filler = disk.fill();
    let alice = server.client(USER).await;
    let (mut placed, refused) = place_until_refused(&server, "the database's disk is full").await;
    let acknowledged = load.acknowledged().await;
    assert_eq!(get(&format!("http://{}/readyz", server.addr)).await.0, 200, "reads still answer");
    std::fs::remove_file(filler).unwrap();
    placed.push(placed_again(&alice, refused).await);
    load.check(&alice, &acknowledged, &placed).await;
}

/// A database of its own in the shared test cluster, which the test can make read-only.
struct OwnDatabase {
    name: String,
    url: String,
    admin: sqlx::PgConnection,
}

impl OwnDatabase {
    async fn create() -> OwnDatabase {
        let base = std::env::var(POSTGRES_URL_VAR).unwrap();
        let mut admin = sqlx::PgConnection::connect(&base).await.unwrap();
        let name = format!("readonly_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.unwrap();
        let url = format!("{}/{name}", base.rsplit_once('/').unwrap().0);
        OwnDatabase { name, url, admin }
    }

    /// Makes every new session read-only (or writable again), and ends subsignal's sessions so that its pool opens
    /// new ones, as a failover to a standby would.
    async fn set_read_only(&mut self, read_only: bool) {
        let name = &self.name;
        let set =
            if read_only { "SET default_transaction_read_only = on" } else { "RESET default_transaction_read_only" };
        sqlx::query(&format!("ALTER DATABASE {name} {set}")).execute(&mut self.admin).await.unwrap();
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(name)
        .execute(&mut self.admin)
        .await
        .unwrap();
    }

    async fn drop_database(mut self) {
        let _ = sqlx::query(&format!("DROP DATABASE {} WITH (FORCE)", self.name)).execute(&mut self.admin).await;
    }
}

/// A PostgreSQL database turned read-only under load (every session read-only, as on a standby after a failover):
/// writes are refused with `UNAVAILABLE` naming it, nothing acknowledged is lost, and once it is writable again the
/// queued writes land and the worker goes on, no step skipped or doubled.
#[tokio::test]
async fn a_read_only_database_refuses_writes_with_unavailable_and_the_server_recovers() {
    if !postgres_available() {
        return;
    }
    let mut run = Seeded::new("faults::a_read_only_database_refuses_writes_with_unavailable_and_the_server_recovers");
    let mut database = OwnDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(dir.path(), &["--database", &database.url, "--worker-lease-ms", "1000"]).await;
    let load = Load::start(&mut run, &[format!("http://{}", server.addr)], &server.dev_token(USER).await).await;
    load.until_acknowledged(load.strike_after(&mut run)).await;

    database.set_read_only(true).await;
    let alice = server.client(USER).await;
    let (mut placed, refused) = place_until_refused(&server, "the database is read-only").await;
    let acknowledged = load.acknowledged().await;
    database.set_read_only(false).await;
    placed.push(placed_again(&alice, refused).await);
    load.check(&alice, &acknowledged, &placed).await;
    database.drop_database().await;
}
