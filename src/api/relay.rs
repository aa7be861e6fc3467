//! Relay of client-published bus messages to peer daemons (`TELEPTY_RELAY_PEERS`, API.md §9).

use parking_lot::Mutex;
use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use serde_json::Value;

use crate::httpc::HttpClient;

const DEDUPE_MAX: usize = 10_000;
const DEDUPE_DROP: usize = 5_000;

pub struct Relay {
    peers: Vec<String>,
    machine_id: String,
    token: String,
    seen: Mutex<(HashSet<String>, VecDeque<String>)>,
    http: HttpClient,
}

impl Relay {
    pub fn from_env(machine_id: String, token: String, local_port: u16) -> Self {
        let peers =
            crate::config::split_list(&std::env::var("TELEPTY_RELAY_PEERS").unwrap_or_default())
                .into_iter()
                .map(|p| {
                    let has_port = p
                        .rsplit_once(':')
                        .is_some_and(|(_, port)| port.parse::<u16>().is_ok());
                    if has_port {
                        format!("http://{p}/api/bus/publish")
                    } else {
                        format!("http://{p}:{local_port}/api/bus/publish")
                    }
                })
                .collect();
        Relay {
            peers,
            machine_id,
            token,
            seen: Mutex::new((HashSet::new(), VecDeque::new())),
            http: HttpClient::new(),
        }
    }

    /// Forward a client-published message to every peer, fire-and-forget.
    pub fn relay(&self, mut msg: Value) {
        if self.peers.is_empty() || !msg.is_object() || msg.get("_relayed_from").is_some() {
            return;
        }
        let id = match msg.get("message_id").and_then(Value::as_str) {
            Some(id) => id.to_string(),
            None => {
                let id = uuid::Uuid::new_v4().to_string();
                msg["message_id"] = Value::String(id.clone());
                id
            }
        };
        {
            let mut seen = self.seen.lock();
            if !seen.0.insert(id.clone()) {
                return;
            }
            seen.1.push_back(id);
            if seen.1.len() > DEDUPE_MAX {
                for _ in 0..DEDUPE_DROP {
                    if let Some(old) = seen.1.pop_front() {
                        seen.0.remove(&old);
                    }
                }
            }
        }
        if msg.get("source_host").is_none() {
            msg["source_host"] = Value::String(self.machine_id.clone());
        }
        msg["_relayed_from"] = Value::String(self.machine_id.clone());
        let body = serde_json::to_vec(&msg).unwrap_or_default();
        for url in &self.peers {
            let http = self.http.clone();
            let url = url.clone();
            let body = body.clone();
            let token = self.token.clone();
            tokio::spawn(async move {
                let r = http
                    .request(
                        "POST",
                        &url,
                        &[("x-telepty-token", &token)],
                        Some(body),
                        Duration::from_secs(3),
                    )
                    .await;
                if let Err(e) = r {
                    tracing::debug!("relay to {url} failed: {e}");
                }
            });
        }
    }
}
