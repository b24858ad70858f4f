//! The physical floor: a raw tokio-tungstenite broadcast server with no GraphQL and no database. It answers the
//! load generator's graphql-transport-ws messages just enough (`connection_ack`; a mutation's `next` and
//! `complete`) and sends every mutation's title to every subscribed socket, serialized once with only the operation
//! id spliced in per socket.

use std::sync::Arc;

use anyhow::Result;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

/// Serves on `listen` until killed; prints `listening on ws://ADDR/graphql` once bound.
pub(crate) async fn serve(listen: &str) -> Result<()> {
    let listener = TcpListener::bind(listen).await?;
    println!("listening on ws://{}/graphql", listener.local_addr()?);
    let (events, _) = broadcast::channel::<Arc<str>>(4096);
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        tokio::spawn(connection(stream, events.clone()));
    }
}

async fn connection(stream: TcpStream, events: broadcast::Sender<Arc<str>>) -> Result<()> {
    // The error type is tungstenite's handshake callback signature, not ours to shrink.
    #[allow(clippy::result_large_err)]
    let offer_subprotocol = |_: &Request, mut response: Response| {
        response.headers_mut().insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse().expect("header"));
        Ok(response)
    };
    // The same initial read buffer as subsignal's (tungstenite's default allocates 128 KiB per socket up front).
    let config = WebSocketConfig::default().read_buffer_size(1024);
    let socket = tokio_tungstenite::accept_hdr_async_with_config(stream, offer_subprotocol, Some(config)).await?;
    let (mut sink, mut stream) = socket.split();
    let mut received = events.subscribe();
    let mut subscription: Option<String> = None;
    loop {
        tokio::select! {
            message = stream.next() => {
                let Some(Ok(message)) = message else { return Ok(()) };
                let Message::Text(text) = message else { continue };
                let message: Value = serde_json::from_str(text.as_str())?;
                let id = message["id"].clone();
                match message["type"].as_str() {
                    Some("connection_init") => sink.send(Message::text(r#"{"type":"connection_ack"}"#)).await?,
                    Some("ping") => sink.send(Message::text(r#"{"type":"pong"}"#)).await?,
                    Some("subscribe") => {
                        let query = message["payload"]["query"].as_str().unwrap_or_default();
                        if query.starts_with("subscription") {
                            subscription = id.as_str().map(str::to_owned);
                            continue;
                        }
                        let title = &message["payload"]["variables"]["input"]["title"];
                        let event = json!({ "data": { "onCreateNote": { "id": "echo", "title": title } } });
                        let _ = events.send(event.to_string().into());
                        let result = json!({ "id": id, "type": "next", "payload": { "data": { "createNote": { "id": "echo" } } } });
                        sink.send(Message::text(result.to_string())).await?;
                        sink.send(Message::text(json!({ "id": id, "type": "complete" }).to_string())).await?;
                    }
                    _ => {}
                }
            }
            event = received.recv() => {
                let event = match event {
                    Ok(event) => event,
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return Ok(()),
                };
                if let Some(id) = &subscription {
                    let frame = format!(r#"{{"id":{},"type":"next","payload":{event}}}"#, Value::from(id.as_str()));
                    sink.send(Message::text(frame)).await?;
                }
            }
        }
    }
}
