//! The web app's files at `/`: compressed, and cached by the browser for as long as their names say they may be.
//!
//! A build may ship `name.br` and `name.gz` beside each file (`cargo xtask demo` writes them, brotli at its best
//! level): those are served as they are to a browser that accepts them. Any other file, and every file of a build
//! without them, is gzipped on the way out. Trunk names each asset after a hash of its content
//! (`app-98789b7cf1cdc4fa_bg.wasm`), so such a file never changes under its name and the browser keeps it for a year
//! without asking again; `index.html` and other unhashed files are checked on every load (`no-cache`, answered
//! `304 Not Modified` when unchanged), so a new build is picked up at once.

use std::path::Path;

use axum::extract::Request;
use axum::http::header::{HeaderValue, CACHE_CONTROL};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::MethodRouter;
use axum::Router;
use tower_http::compression::CompressionLayer;
use tower_http::services::{ServeDir, ServeFile};

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "no-cache";

/// The router's fallback: the built app in `dir`, any unknown path answered with its `index.html`.
pub(crate) fn serve<S: Clone + Send + Sync + 'static>(router: Router<S>, dir: &Path) -> Router<S> {
    let files = ServeDir::new(dir)
        .precompressed_br()
        .precompressed_gzip()
        .fallback(ServeFile::new(dir.join("index.html")).precompressed_br().precompressed_gzip());
    let app = Router::new().fallback_service(files).layer(gzip()).layer(axum::middleware::from_fn(cache_control));
    router.fallback_service(app)
}

/// `route`'s answers gzipped for a client that accepts it (a snapshot's JSON shrinks several times; answers under
/// 32 bytes, and event streams, are left alone).
pub(crate) fn compressed<S: Clone + Send + Sync + 'static>(route: MethodRouter<S>) -> MethodRouter<S> {
    route.layer(gzip())
}

fn gzip() -> CompressionLayer {
    CompressionLayer::new().no_br().no_deflate().no_zstd()
}

/// Sets `Cache-Control` on a successful answer from the app's files, by the name asked for.
async fn cache_control(request: Request, next: Next) -> Response {
    let policy = if hashed(request.uri().path()) { IMMUTABLE } else { REVALIDATE };
    let mut response = next.run(request).await;
    if response.status().is_success() {
        response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static(policy));
    }
    response
}

/// Whether the file name carries a content hash the way Trunk writes it: a `-` and a 64-bit hash in hexadecimal
/// (up to 16 digits, without leading zeros) before the extension (`style-92330569c6945078.css`,
/// `app-4afa22c751aa5fa_bg.wasm`). Fewer than 12 digits is not taken for a hash (a hash that short, one in 65,536, is
/// only revalidated).
fn hashed(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    let stem = name.split('.').next().unwrap_or(name);
    let stem = stem.strip_suffix("_bg").unwrap_or(stem);
    stem.rsplit_once('-').is_some_and(|(_, hash)| {
        (12..=16).contains(&hash.len()) && hash.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

#[cfg(test)]
mod tests {
    use super::hashed;

    #[test]
    fn trunk_asset_names_are_hashed_and_others_are_not() {
        assert!(hashed("/style-92330569c6945078.css"));
        assert!(hashed("/subsignal-web-98789b7cf1cdc4fa.js"));
        assert!(hashed("/subsignal-web-98789b7cf1cdc4fa_bg.wasm"));
        assert!(hashed("/subsignal-web-4afa22c751aa5fa_bg.wasm"), "15 digits: a hash with a leading zero");
        assert!(!hashed("/release-notes-2026.html"));
        assert!(!hashed("/"));
        assert!(!hashed("/index.html"));
        assert!(!hashed("/netsim.json"));
        assert!(!hashed("/my-notes.txt"));
        assert!(!hashed("/orders/123"));
    }
}
