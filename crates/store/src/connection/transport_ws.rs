//! graphql-transport-ws on the wire: `connection_init` with the auth payload, `ping`/`pong` keep-alive, `subscribe`
//! and `complete`.

use serde_json::Value;
use subsignal_protocol::transport_ws::{ClientMessage, ServerMessage, SubscribePayload};

use super::{Credentials, Frame, Payload, Protocol, Wire};
use crate::store::Output;

/// graphql-transport-ws, as the `graphql-ws` npm library speaks it.
#[derive(Debug)]
pub(crate) struct TransportWs;

impl Wire for TransportWs {
    fn protocol(&self) -> Protocol {
        Protocol::TransportWs
    }

    fn url_query(&self, _: &Credentials) -> Option<String> {
        None
    }

    fn init(&self, socket: u64, credentials: &Credentials) -> Output {
        Output::Send { socket, message: ClientMessage::ConnectionInit { payload: credentials.auth.clone() } }
    }

    fn read(&self, text: &str) -> Option<Frame> {
        Some(match serde_json::from_str(text).ok()? {
            ServerMessage::ConnectionAck { payload } => {
                let epoch = payload.as_ref().and_then(|p| p.get("epoch")).and_then(Value::as_i64);
                Frame::Ack { server_keepalive_ms: None, epoch }
            }
            ServerMessage::Ping { .. } => Frame::Ping,
            ServerMessage::Pong { .. } => Frame::Alive,
            ServerMessage::Next { id, payload } => Frame::Next { id, payload: Payload::Json(payload) },
            ServerMessage::Error { id, payload } => Frame::Error { id, errors: payload },
            ServerMessage::Complete { id } => Frame::Complete { id },
        })
    }

    fn result_type(&self) -> &'static str {
        "next"
    }

    fn subscribe(&self, socket: u64, id: String, query: &str, variables: Option<Value>, _: &Credentials) -> Output {
        let payload = SubscribePayload { query: query.to_owned(), operation_name: None, variables, extensions: None };
        Output::Send { socket, message: ClientMessage::Subscribe { id, payload } }
    }

    fn stop(&self, socket: u64, id: String) -> Output {
        Output::Send { socket, message: ClientMessage::Complete { id } }
    }

    fn ping(&self, socket: u64) -> Option<Output> {
        Some(Output::Send { socket, message: ClientMessage::Ping { payload: None } })
    }

    fn pong(&self, socket: u64) -> Option<Output> {
        Some(Output::Send { socket, message: ClientMessage::Pong { payload: None } })
    }

    fn acknowledges_subscriptions(&self) -> bool {
        false
    }
}
