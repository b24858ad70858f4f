//! Prometheus metrics: their names (every metric the server records is named here), the recorder, and the
//! `/metrics` listener on its own address (`metrics-listen`; off by default, and then recording costs nothing).
//!
//! The recorder is process-wide (the `metrics` crate's global recorder): every server started in one process records
//! into it, which only tests do.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextExecute, NextPrepareRequest};
use async_graphql::parser::types::OperationType;
use async_graphql::{ServerResult, Value};
use subsignal_protocol::change::error_code;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::storage::Storage;

/// Open WebSocket connections, by `protocol` (gauge).
pub(crate) const CONNECTIONS: &str = "subsignal_websocket_connections";
/// Running subscriptions, by `protocol` (gauge).
pub(crate) const SUBSCRIPTIONS: &str = "subsignal_subscriptions";
/// Subscription events sent to clients, by `protocol` (counter).
pub(crate) const EVENTS_DELIVERED: &str = "subsignal_events_delivered_total";
/// Items served by the generated list queries (`listT`, the snapshots clients start from), by `model` (counter):
/// beside [`EVENTS_DELIVERED`] it tells a full reload from a catch-up.
pub(crate) const LIST_ITEMS: &str = "subsignal_list_items_served_total";
/// How far behind the change log's head each change event was when its subscription read it, in seqs (histogram).
pub(crate) const SUBSCRIPTION_LAG: &str = "subsignal_subscription_lag_seqs";
/// How long each GraphQL mutation took, in seconds (histogram).
pub(crate) const MUTATION_DURATION: &str = "subsignal_mutation_duration_seconds";
/// Writes refused because `expectedVersion` was stale (counter).
pub(crate) const WRITE_CONFLICTS: &str = "subsignal_write_conflicts_total";
/// Requests refused by validation, by `kind`: `input` (a field's value) or `document` (the GraphQL document, its
/// limits included) (counter).
pub(crate) const VALIDATION_FAILURES: &str = "subsignal_validation_failures_total";
/// Batches a stream consumer handled, by `consumer` (counter).
pub(crate) const WORKER_BATCHES: &str = "subsignal_worker_batches_total";
/// Retries of failed records, by `consumer` (counter).
pub(crate) const WORKER_RETRIES: &str = "subsignal_worker_retries_total";
/// Records given up on, by `consumer` (counter).
pub(crate) const DEAD_LETTERS: &str = "subsignal_worker_dead_letters_total";
/// Items removed because their TTL passed (counter).
pub(crate) const TTL_EXPIRIES: &str = "subsignal_ttl_expiries_total";
/// The change log's last seq (gauge, read at each scrape).
pub(crate) const CHANGE_LOG_HEAD: &str = "subsignal_change_log_head_seq";
/// The highest seq retention removed (gauge, read at each scrape).
pub(crate) const CHANGE_LOG_PRUNED: &str = "subsignal_change_log_pruned_seq";
/// Records the change log holds: head − pruned, since seqs have no gaps (gauge, read at each scrape).
pub(crate) const CHANGE_LOG_RECORDS: &str = "subsignal_change_log_records";
/// Requests and connections refused by a limit, by `limit`: `messages_per_sec`, `connections_per_addr`,
/// `message_bytes`, `header_bytes` (counter).
pub(crate) const LIMIT_REFUSALS: &str = "subsignal_limit_refusals_total";

/// How often histogram samples are folded into their buckets when nobody scrapes.
const UPKEEP: Duration = Duration::from_secs(5);

/// Installs the process's recorder (once; later calls share it) and gives its handle.
fn recorder() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let seconds = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
        let seqs = [0.0, 1.0, 2.0, 5.0, 10.0, 50.0, 100.0, 500.0, 1000.0, 5000.0, 10000.0];
        PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(MUTATION_DURATION.into()), &seconds)
            .and_then(|b| b.set_buckets_for_metric(Matcher::Full(SUBSCRIPTION_LAG.into()), &seqs))
            .expect("bucket lists are not empty")
            .install_recorder()
            .expect("no other metrics recorder is installed")
    })
}

/// Serves `GET /metrics` on `addr` until `shutdown` turns true; gives the bound address and the task.
pub(crate) async fn serve(
    addr: SocketAddr,
    storage: Storage,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let handle = recorder();
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let render = move || {
        let storage = storage.clone();
        async move {
            let head = storage.feed().head();
            metrics::gauge!(CHANGE_LOG_HEAD).set(head as f64);
            if let Ok(pruned) = storage.pruned_through().await {
                metrics::gauge!(CHANGE_LOG_PRUNED).set(pruned as f64);
                metrics::gauge!(CHANGE_LOG_RECORDS).set((head - pruned).max(0) as f64);
            }
            handle.run_upkeep();
            ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], handle.render())
        }
    };
    let router = axum::Router::new().route("/metrics", axum::routing::get(render));
    let task = tokio::spawn(async move {
        let upkeep = async {
            loop {
                tokio::time::sleep(UPKEEP).await;
                handle.run_upkeep();
            }
        };
        let serve = axum::serve(listener, router).with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        });
        tokio::select! {
            served = serve => if let Err(e) = served { tracing::error!(error = %e, "the metrics listener failed") },
            () = upkeep => {}
        }
    });
    Ok((bound, task))
}

/// The schema extension that records [`MUTATION_DURATION`], [`WRITE_CONFLICTS`] and [`VALIDATION_FAILURES`] for
/// every request, over HTTP and WebSocket alike. Registered first, so that it sees the document limits' refusals.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OperationMetrics;

impl ExtensionFactory for OperationMetrics {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(RequestMetrics::default())
    }
}

/// One request's [`OperationMetrics`].
#[derive(Debug, Default)]
struct RequestMetrics {
    mutation: AtomicBool,
}

fn document_refused() {
    metrics::counter!(VALIDATION_FAILURES, "kind" => "document").increment(1);
}

#[async_trait::async_trait]
impl Extension for RequestMetrics {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: async_graphql::Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<async_graphql::Request> {
        let mut request = next.run(ctx, request).await.inspect_err(|_| document_refused())?;
        // Parsed already (by the document limits): this only reads the document.
        let name = request.operation_name.clone();
        let mutation = request
            .parsed_query()
            .is_ok_and(|doc| crate::http::operation_type_in(doc, name.as_deref()) == Some(OperationType::Mutation));
        self.mutation.store(mutation, Ordering::Relaxed);
        Ok(request)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: async_graphql::extensions::NextValidation<'_>,
    ) -> Result<async_graphql::ValidationResult, Vec<async_graphql::ServerError>> {
        next.run(ctx).await.inspect_err(|_| document_refused())
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> async_graphql::Response {
        let started = Instant::now();
        let response = next.run(ctx, operation_name).await;
        if self.mutation.load(Ordering::Relaxed) {
            metrics::histogram!(MUTATION_DURATION).record(started.elapsed().as_secs_f64());
        }
        for error in &response.errors {
            match error.extensions.as_ref().and_then(|e| e.get("code")) {
                Some(Value::String(code)) if code == error_code::CONFLICT => {
                    metrics::counter!(WRITE_CONFLICTS).increment(1)
                }
                Some(Value::String(code)) if code == error_code::VALIDATION => {
                    metrics::counter!(VALIDATION_FAILURES, "kind" => "input").increment(1)
                }
                _ => {}
            }
        }
        response
    }
}
