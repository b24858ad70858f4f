//! The proxy through real loopback sockets: latency, bandwidth, resets, stalls, profile switches and the control API.
//! Run with `cargo test -p subsignal-netsim`. Timings are asserted as lower bounds and loose ratios only.

use std::io::ErrorKind;
use std::time::Duration;

use subsignal_netsim::{
    Connectivity, Direction, Faults, MsRange, NetsimConfig, Profile, ProfileSet, RunningNetsim, Stall,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::{timeout, Instant};

/// How long a test waits for something that must happen.
const WAIT: Duration = Duration::from_secs(10);

/// An upstream that echoes every byte back.
async fn echo_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = socket.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

async fn proxy(upstream: String, profile: Profile) -> RunningNetsim {
    let netsim = subsignal_netsim::start(NetsimConfig { upstream, seed: Some(7), ..NetsimConfig::default() })
        .await
        .expect("netsim starts");
    netsim.set_profile(profile).unwrap();
    netsim
}

/// One echo round trip of `n` bytes.
async fn round_trip(socket: &mut TcpStream, n: usize) -> Duration {
    let sent = vec![7u8; n];
    let started = Instant::now();
    socket.write_all(&sent).await.unwrap();
    let mut got = vec![0u8; n];
    timeout(WAIT, socket.read_exact(&mut got)).await.expect("echo in time").unwrap();
    assert_eq!(got, sent);
    started.elapsed()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::test]
async fn latency_is_added_in_each_direction_and_does_not_lower_throughput() {
    // An upstream that notes when each byte arrives and when it answers it.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = listener.local_addr().unwrap().to_string();
    let (times_tx, mut times) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut byte = [0u8; 1];
        while socket.read_exact(&mut byte).await.is_ok() {
            let arrived = Instant::now();
            tokio::time::sleep(Duration::from_millis(20)).await;
            let answered = Instant::now();
            if socket.write_all(&byte).await.is_err() {
                break;
            }
            let _ = times_tx.send((arrived, answered));
        }
    });
    let up = Direction { latency_ms: 150.0, ..Direction::default() };
    let down = Direction { latency_ms: 50.0, ..Direction::default() };
    let netsim = proxy(upstream, Profile { up, down, ..Profile::pass_through("asymmetric") }).await;
    let mut socket = TcpStream::connect(netsim.addr).await.unwrap();
    // The first exchange also pays for the handshake (one round trip).
    let first = round_trip(&mut socket, 1).await;
    times.recv().await.unwrap();
    assert!(first >= Duration::from_millis(400), "handshake + round trip took {first:?}");
    for _ in 0..3 {
        let sent = Instant::now();
        let back = sent + round_trip(&mut socket, 1).await;
        let (arrived, answered) = times.recv().await.unwrap();
        let (up_ms, down_ms) = (ms(arrived - sent), ms(back - answered));
        eprintln!("one-way up {up_ms:.1} ms (configured 150), down {down_ms:.1} ms (configured 50)");
        assert!(up_ms >= 150.0, "up took {up_ms} ms");
        assert!(down_ms >= 50.0, "down took {down_ms} ms");
    }

    // Twenty writes 20 ms apart through 200 ms of round trip: pipelined, they take about 20 × 20 + 200 ms, not
    // 20 × 200 ms.
    let echo = echo_server().await;
    let netsim = proxy(echo, Profile::with_latency("100ms", 100.0)).await;
    let mut socket = TcpStream::connect(netsim.addr).await.unwrap();
    round_trip(&mut socket, 1).await;
    let started = Instant::now();
    let (mut r, mut w) = socket.split();
    let writer = async {
        for i in 0..20u8 {
            w.write_all(&[i; 100]).await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let reader = async {
        let mut got = vec![0u8; 2000];
        timeout(WAIT, r.read_exact(&mut got)).await.expect("all echoes in time").unwrap();
        got
    };
    let ((), got) = tokio::join!(writer, reader);
    let took = started.elapsed();
    eprintln!("20 pipelined writes through 200 ms RTT: {took:?} (stop-and-wait would be ≥ 4 s)");
    assert_eq!(got.chunks(100).map(|c| c[0]).collect::<Vec<_>>(), (0..20).collect::<Vec<u8>>(), "in order");
    assert!(took >= Duration::from_millis(580), "{took:?}");
    assert!(took < Duration::from_millis(2500), "latency must not serialise the writes: {took:?}");
}

#[tokio::test]
async fn the_bandwidth_cap_holds_in_the_capped_direction_only() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = listener.local_addr().unwrap().to_string();
    const SIZE: usize = 64 * 1024;
    // The upstream sends 64 KiB down at once, then reads 64 KiB up.
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        socket.write_all(&vec![1u8; SIZE]).await.unwrap();
        let mut up = vec![0u8; SIZE];
        socket.read_exact(&mut up).await.unwrap();
        socket.write_all(b"k").await.unwrap();
    });
    let down = Direction { rate_kbps: Some(256), ..Direction::default() };
    let netsim = proxy(upstream, Profile { down, ..Profile::pass_through("256k-down") }).await;
    let mut socket = TcpStream::connect(netsim.addr).await.unwrap();
    let started = Instant::now();
    let mut got = vec![0u8; SIZE];
    timeout(WAIT, socket.read_exact(&mut got)).await.expect("64 KiB in time").unwrap();
    let took = started.elapsed().as_secs_f64();
    let theory = SIZE as f64 * 8.0 / 256_000.0;
    eprintln!("64 KiB down at 256 kbit/s: {took:.3} s (theory {theory:.3} s, ratio {:.2})", took / theory);
    assert!(took >= 0.8 * theory, "{took} s is faster than the cap allows ({theory} s)");

    // Up has no cap: the same amount goes at loopback speed, many times faster.
    let started = Instant::now();
    socket.write_all(&vec![2u8; SIZE]).await.unwrap();
    let mut k = [0u8; 1];
    timeout(WAIT, socket.read_exact(&mut k)).await.expect("ack in time").unwrap();
    let up = started.elapsed().as_secs_f64();
    eprintln!("64 KiB up uncapped: {:.1} ms", up * 1000.0);
    assert!(up < theory / 4.0, "the uncapped direction took {up} s");
}

/// Whether the peer reset the connection (or closed it) within [`WAIT`].
async fn dropped(socket: &mut TcpStream) -> Result<(), String> {
    let mut buf = [0u8; 64];
    loop {
        match timeout(WAIT, socket.read(&mut buf)).await {
            Err(_) => return Err("still open".into()),
            Ok(Ok(0)) => return Err("closed with a FIN, not reset".into()),
            Ok(Ok(_)) => continue,
            Ok(Err(e)) if e.kind() == ErrorKind::ConnectionReset => return Ok(()),
            Ok(Err(e)) => return Err(format!("unexpected error {e}")),
        }
    }
}

#[tokio::test]
async fn reset_all_drops_every_open_connection_and_new_ones_work() {
    let netsim = proxy(echo_server().await, Profile::pass_through("plain")).await;
    let mut a = TcpStream::connect(netsim.addr).await.unwrap();
    let mut b = TcpStream::connect(netsim.addr).await.unwrap();
    round_trip(&mut a, 10).await;
    round_trip(&mut b, 10).await;
    assert_eq!(netsim.reset_all(), 2);
    dropped(&mut a).await.unwrap();
    dropped(&mut b).await.unwrap();
    let mut c = TcpStream::connect(netsim.addr).await.unwrap();
    round_trip(&mut c, 10).await;
    assert_eq!(netsim.stats().resets, 2);
}

#[tokio::test]
async fn a_scheduled_reset_drops_the_connection_after_its_time() {
    let faults = Faults { reset_after_ms: Some(MsRange::fixed(300)), stall: None };
    let netsim = proxy(echo_server().await, Profile { faults, ..Profile::pass_through("reset-300") }).await;
    let started = Instant::now();
    let mut socket = TcpStream::connect(netsim.addr).await.unwrap();
    round_trip(&mut socket, 10).await;
    dropped(&mut socket).await.unwrap();
    let took = started.elapsed();
    eprintln!("reset after {took:?} (configured 300 ms)");
    assert!(took >= Duration::from_millis(300), "{took:?}");
}

/// An upstream that sends a numbered byte every 10 ms.
async fn ticker() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                for i in 0u8.. {
                    if socket.write_all(&[i]).await.is_err() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            });
        }
    });
    addr
}

/// Reads for `span`, returning the bytes, the longest silence and whether the connection was reset.
async fn watch_stream(socket: &mut TcpStream, span: Duration) -> (Vec<u8>, Duration, bool) {
    let deadline = Instant::now() + span;
    let mut bytes = Vec::new();
    let mut last = Instant::now();
    let mut longest = Duration::ZERO;
    let mut buf = [0u8; 256];
    loop {
        match tokio::time::timeout_at(deadline, socket.read(&mut buf)).await {
            Err(_) => return (bytes, longest.max(deadline - last), false),
            Ok(Ok(0)) => panic!("closed with a FIN"),
            Ok(Ok(n)) => {
                longest = longest.max(last.elapsed());
                last = Instant::now();
                bytes.extend_from_slice(&buf[..n]);
            }
            Ok(Err(e)) => {
                assert_eq!(e.kind(), ErrorKind::ConnectionReset);
                return (bytes, longest.max(last.elapsed()), true);
            }
        }
    }
}

fn stalling(then_reset: f64) -> Profile {
    let stall = Stall { every_ms: MsRange::fixed(200), for_ms: MsRange::fixed(500), then_reset };
    Profile { faults: Faults { stall: Some(stall), reset_after_ms: None }, ..Profile::pass_through("stall") }
}

#[tokio::test]
async fn a_stall_holds_every_byte_for_its_window_then_resumes_in_order() {
    let netsim = proxy(ticker().await, stalling(0.0)).await;
    let mut socket = TcpStream::connect(netsim.addr).await.unwrap();
    // Flowing 0–200 ms, stalled 200–700 ms, flowing 700–900 ms.
    let (bytes, silence, reset) = watch_stream(&mut socket, Duration::from_millis(850)).await;
    eprintln!("longest silence {silence:?} (stall configured 500 ms), {} bytes", bytes.len());
    assert!(!reset);
    assert!(silence >= Duration::from_millis(450), "{silence:?}");
    assert!(bytes.iter().enumerate().all(|(i, b)| *b == i as u8), "held, not lost or reordered: {bytes:?}");
    assert!(bytes.len() >= 40, "flow resumed with what was held: {} bytes", bytes.len());
}

#[tokio::test]
async fn a_stall_that_ends_in_a_reset_is_silent_then_resets() {
    let netsim = proxy(ticker().await, stalling(1.0)).await;
    let mut socket = TcpStream::connect(netsim.addr).await.unwrap();
    let started = Instant::now();
    let (bytes, silence, reset) = watch_stream(&mut socket, WAIT).await;
    eprintln!("stall then reset: silent {silence:?}, reset at {:?}", started.elapsed());
    assert!(reset, "the stall ends in a reset");
    assert!(!bytes.is_empty(), "bytes flowed before the stall");
    assert!(silence >= Duration::from_millis(450), "{silence:?}");
    assert!(started.elapsed() >= Duration::from_millis(650));
}

#[tokio::test]
async fn switching_the_profile_changes_an_open_connection() {
    let profiles = ProfileSet::builtin()
        .with_toml("[profiles.slow-test]\ndown = { latency_ms = 150 }\nup = { latency_ms = 150 }\n")
        .unwrap();
    let netsim = subsignal_netsim::start(NetsimConfig {
        upstream: echo_server().await,
        profiles,
        seed: Some(1),
        ..NetsimConfig::default()
    })
    .await
    .unwrap();
    let control = format!("http://{}", netsim.control_addr.unwrap());
    let http = reqwest::Client::new();
    let mut socket = TcpStream::connect(netsim.addr).await.unwrap();
    let before = round_trip(&mut socket, 100).await;

    let switched = http.put(format!("{control}/profile/slow-test")).send().await.unwrap();
    assert_eq!(switched.status(), 200);
    let slow = round_trip(&mut socket, 100).await;

    let back: serde_json::Value = http
        .post(format!("{control}/profile"))
        .json(&serde_json::json!({"name": "none"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(back["name"], "none");
    let after = round_trip(&mut socket, 100).await;
    eprintln!("round trip on one connection: none {before:?}, slow-test {slow:?} (configured 300 ms), none {after:?}");
    assert!(slow >= Duration::from_millis(300), "{slow:?}");
    assert!(slow > before * 3 && slow > after * 3, "{before:?} / {slow:?} / {after:?}");
}

#[tokio::test]
async fn offline_refuses_new_connections_and_resets_open_ones() {
    let netsim = proxy(echo_server().await, Profile::pass_through("plain")).await;
    let mut open = TcpStream::connect(netsim.addr).await.unwrap();
    round_trip(&mut open, 10).await;
    netsim.select_profile("offline").unwrap();
    dropped(&mut open).await.unwrap();
    let mut refused = TcpStream::connect(netsim.addr).await.unwrap();
    dropped(&mut refused).await.unwrap();
    netsim.select_profile("none").unwrap();
    let mut again = TcpStream::connect(netsim.addr).await.unwrap();
    round_trip(&mut again, 10).await;
}

#[tokio::test]
async fn a_blackhole_holds_bytes_until_the_profile_changes() {
    let blackhole = Profile { connectivity: Connectivity::Blackhole, ..Profile::pass_through("blackhole") };
    let netsim = proxy(echo_server().await, blackhole).await;
    let mut socket = TcpStream::connect(netsim.addr).await.unwrap();
    socket.write_all(b"hello").await.unwrap();
    let mut buf = [0u8; 5];
    assert!(timeout(Duration::from_millis(300), socket.read_exact(&mut buf)).await.is_err(), "nothing moves");
    netsim.select_profile("none").unwrap();
    timeout(WAIT, socket.read_exact(&mut buf)).await.expect("held bytes arrive").unwrap();
    assert_eq!(&buf, b"hello");
}

#[tokio::test]
async fn the_control_api_lists_reads_switches_and_resets_with_cors() {
    let netsim = proxy(echo_server().await, Profile::pass_through("plain")).await;
    netsim.select_profile("lte").unwrap();
    let control = format!("http://{}", netsim.control_addr.unwrap());
    let http = reqwest::Client::new();

    let all: serde_json::Value = http.get(format!("{control}/profiles")).send().await.unwrap().json().await.unwrap();
    let names: Vec<&str> = all.as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["none", "slow-3g", "slow-4g", "fast-4g", "lte", "5g", "flaky", "offline"]);

    let current =
        http.get(format!("{control}/profile")).header("origin", "http://127.0.0.1:4000").send().await.unwrap();
    assert_eq!(current.headers()["access-control-allow-origin"], "*", "a page on another port may call it");
    let current: serde_json::Value = current.json().await.unwrap();
    assert_eq!(current["name"], "lte");
    assert_eq!(current["rtt_ms"], 70.0);
    assert_eq!(current["down"]["rate_kbps"], 12_000);
    assert!(current["source"].as_str().unwrap().contains("WebPageTest"));

    let preflight = http
        .request(reqwest::Method::OPTIONS, format!("{control}/profile/slow-3g"))
        .header("origin", "http://127.0.0.1:8080")
        .header("access-control-request-method", "PUT")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success());
    assert!(preflight.headers().contains_key("access-control-allow-methods"));

    let unknown = http.put(format!("{control}/profile/carrier-pigeon")).send().await.unwrap();
    assert_eq!(unknown.status(), 404);
    let body: serde_json::Value = unknown.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("slow-3g"), "{body}");

    let switched: serde_json::Value =
        http.put(format!("{control}/profile/slow-3g")).send().await.unwrap().json().await.unwrap();
    assert_eq!(switched["rtt_ms"], 2000.0);
    assert_eq!(netsim.profile().name, "slow-3g");

    netsim.select_profile("none").unwrap();
    let mut socket = TcpStream::connect(netsim.addr).await.unwrap();
    round_trip(&mut socket, 10).await;
    let reset: serde_json::Value = http.post(format!("{control}/reset")).send().await.unwrap().json().await.unwrap();
    assert_eq!(reset["reset"], 1);
    dropped(&mut socket).await.unwrap();
    let stats: serde_json::Value = http.get(format!("{control}/stats")).send().await.unwrap().json().await.unwrap();
    assert_eq!((stats["profile"].as_str(), stats["bytes_up"].as_u64()), (Some("none"), Some(10)));
    netsim.shutdown().await;
}

/// An upstream that answers every connection with its `name` and closes.
async fn named_server(name: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = socket.write_all(name.as_bytes()).await;
            });
        }
    });
    addr
}

async fn greeting(addr: std::net::SocketAddr) -> String {
    let mut socket = TcpStream::connect(addr).await.unwrap();
    let mut text = String::new();
    timeout(WAIT, socket.read_to_string(&mut text)).await.expect("a greeting in time").unwrap();
    text
}

#[tokio::test]
async fn a_new_upstream_takes_the_connections_opened_after_the_switch() {
    let (a, b) = (named_server("a").await, named_server("b").await);
    let netsim = proxy(a, Profile::pass_through("plain")).await;
    let mut open = TcpStream::connect(netsim.addr).await.unwrap();
    let mut first = [0u8; 1];
    timeout(WAIT, open.read_exact(&mut first)).await.expect("a's greeting").unwrap();
    assert_eq!(&first, b"a");
    netsim.set_upstream(&b);
    assert_eq!(greeting(netsim.addr).await, "b");
    assert_eq!(greeting(netsim.addr).await, "b");
}
