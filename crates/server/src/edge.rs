//! The server's edge, what every request passes before a route: the request log (one line per request, in a
//! `request` span that whatever the request logs shares), CORS from `allowed-origins`, and the client's address
//! behind the reverse proxies listed in `trusted-proxies` (the per-address limits and the logs use it).

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method};
use ipnet::IpNet;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::Config;

/// The span of one request: its number in this process, method, path (never the query string, which may carry
/// credentials) and client address.
pub(crate) fn request_span(config: &Config, request: &axum::extract::Request) -> tracing::Span {
    static REQUESTS: AtomicU64 = AtomicU64::new(0);
    let client = client_addr(config, request.extensions(), request.headers());
    tracing::info_span!(
        "request",
        id = REQUESTS.fetch_add(1, Ordering::Relaxed) + 1,
        method = %request.method(),
        path = request.uri().path(),
        %client,
    )
}

/// The request log's line, in the request's span: status and latency.
pub(crate) fn log_response<B>(response: &axum::http::Response<B>, latency: Duration, _span: &tracing::Span) {
    tracing::info!(status = response.status().as_u16(), latency_ms = latency.as_millis() as u64, "request");
}

/// CORS for the HTTP API: browsers on the `allowed-origins` (any origin when the list is empty) may call it with
/// `Authorization` or `x-api-key`. No cookies are involved (credentials travel in headers), so answering any origin
/// exposes nothing a page could not already ask for with a token of its own.
pub(crate) fn cors(config: &Config) -> CorsLayer {
    let origins = if config.allowed_origins.is_empty() {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(config.allowed_origins.iter().filter_map(|origin| HeaderValue::from_str(origin).ok()))
    };
    CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            HeaderName::from_static("x-api-key"),
        ])
        .max_age(Duration::from_secs(600))
}

/// The address a request comes from: the peer, unless the peer is a trusted proxy; then the last address in the
/// forwarding header (`Forwarded` if present, else `X-Forwarded-For`) that is not itself a trusted proxy, walking
/// back from the peer. Without a usable header, the peer. (A router driven without a socket, in tests, has no peer:
/// every caller is 0.0.0.0.)
pub(crate) fn client_addr(config: &Config, extensions: &axum::http::Extensions, headers: &HeaderMap) -> IpAddr {
    let peer = extensions.get::<ConnectInfo<SocketAddr>>().map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
    let trusted = |addr: &IpAddr| config.trusted_proxies.iter().any(|net: &IpNet| net.contains(addr));
    if !trusted(&peer) {
        return peer;
    }
    let hops = forwarded_for(headers);
    // The client is the hop just before the nearest untrusted one; if every hop is trusted, the first.
    hops.iter().rev().find(|hop| !trusted(hop)).or(hops.first()).copied().unwrap_or(peer)
}

/// The client addresses a request's forwarding headers list, first (the original client) to last.
fn forwarded_for(headers: &HeaderMap) -> Vec<IpAddr> {
    let values = |name| headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(','));
    if headers.contains_key(header::FORWARDED) {
        // RFC 7239: `Forwarded: for=192.0.2.60;proto=http, for="[2001:db8::1]:4711"`.
        values(header::FORWARDED)
            .filter_map(|element| {
                element.split(';').find_map(|pair| {
                    let (key, value) = pair.trim().split_once('=')?;
                    key.trim().eq_ignore_ascii_case("for").then(|| parse_node(value.trim().trim_matches('"')))?
                })
            })
            .collect()
    } else {
        values(HeaderName::from_static("x-forwarded-for")).filter_map(|hop| parse_node(hop.trim())).collect()
    }
}

/// An address as forwarding headers write it: `192.0.2.1`, `192.0.2.1:80`, `2001:db8::1` or `[2001:db8::1]:80`.
fn parse_node(text: &str) -> Option<IpAddr> {
    text.parse()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|addr| addr.ip()))
        .or_else(|| text.strip_prefix('[')?.split(']').next()?.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(proxies: &[&str]) -> Config {
        let settings = crate::config::Settings {
            trusted_proxies: Some(proxies.iter().map(|p| (*p).to_owned()).collect()),
            ..Default::default()
        };
        settings.resolve().unwrap()
    }

    fn from(peer: &str, headers: &[(&str, &str)], proxies: &[&str]) -> String {
        let mut extensions = axum::http::Extensions::new();
        extensions.insert(ConnectInfo(SocketAddr::new(peer.parse().unwrap(), 1234)));
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(HeaderName::from_bytes(name.as_bytes()).unwrap(), value.parse().unwrap());
        }
        client_addr(&config(proxies), &extensions, &map).to_string()
    }

    #[test]
    fn forwarding_headers_count_only_from_trusted_proxies() {
        let xff = [("x-forwarded-for", "203.0.113.9, 10.0.0.7")];
        assert_eq!(from("198.51.100.1", &xff, &[]), "198.51.100.1", "no proxy trusted");
        assert_eq!(from("198.51.100.1", &xff, &["10.0.0.0/8"]), "198.51.100.1", "the peer is not a proxy");
        assert_eq!(from("10.0.0.2", &xff, &["10.0.0.0/8"]), "203.0.113.9", "through two trusted proxies");
        assert_eq!(from("10.0.0.2", &xff, &["10.0.0.2"]), "10.0.0.7", "only the nearest proxy is trusted");
        assert_eq!(from("10.0.0.2", &[], &["10.0.0.2"]), "10.0.0.2", "no header: the peer");
        let all_trusted = [("x-forwarded-for", "10.0.0.9")];
        assert_eq!(from("10.0.0.2", &all_trusted, &["10.0.0.0/8"]), "10.0.0.9");
    }

    #[test]
    fn forwarded_wins_over_x_forwarded_for_and_reads_every_form() {
        let headers = [
            ("forwarded", "for=192.0.2.60;proto=http, for=\"[2001:db8::1]:4711\""),
            ("x-forwarded-for", "203.0.113.9"),
        ];
        assert_eq!(from("10.0.0.2", &headers, &["10.0.0.2"]), "2001:db8::1");
        assert_eq!(from("10.0.0.2", &headers, &["10.0.0.2", "2001:db8::/32"]), "192.0.2.60");
        assert_eq!(from("10.0.0.2", &[("forwarded", "For=\"192.0.2.43:47011\"")], &["10.0.0.2"]), "192.0.2.43");
        assert_eq!(from("10.0.0.2", &[("forwarded", "for=unknown")], &["10.0.0.2"]), "10.0.0.2");
    }
}
