//! Client-chosen inject ids (`inject_id`): a retry with the same id — after a timeout, a lost
//! connection, a restarted client — gets the first request's answer and never types twice.
//!
//! Each id is remembered for [`TTL`] with the session it went to and the delivery's outcome
//! (shared through a watch channel, so any number of retries can wait for it). At most
//! [`CAPACITY`] ids are kept; the oldest go first.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::{oneshot, watch};

use super::EngineError;
use super::mailbox::Delivered;
use super::ops::InjectOutcome;

/// How long an id is remembered.
pub const TTL: Duration = Duration::from_secs(600);
/// Ids remembered at most (a retry storm of fresh ids cannot grow the daemon).
pub const CAPACITY: usize = 4096;

type Outcome = Option<Result<Delivered, EngineError>>;

struct Entry {
    session_id: String,
    submit: &'static str,
    at: Instant,
    outcome: watch::Receiver<Outcome>,
}

#[derive(Default)]
pub struct RecentInjects {
    map: Mutex<HashMap<String, Entry>>,
}

impl RecentInjects {
    /// The first request's outcome for `key`, if it is still remembered. The same key for
    /// another session is the caller's mistake (409), never a second delivery.
    pub fn lookup(
        &self,
        key: &str,
        session_id: &str,
    ) -> Result<Option<InjectOutcome>, EngineError> {
        let map = self.map.lock();
        let Some(e) = map.get(key).filter(|e| e.at.elapsed() < TTL) else {
            return Ok(None);
        };
        if e.session_id != session_id {
            return Err(EngineError::InvalidRequest(format!(
                "inject_id {key} was already used for session {}",
                e.session_id
            )));
        }
        let mut rx = e.outcome.clone();
        let (tx, done) = oneshot::channel();
        tokio::spawn(async move {
            if let Ok(v) = rx.wait_for(Option::is_some).await
                && let Some(r) = v.clone()
            {
                let _ = tx.send(r);
            }
        });
        Ok(Some(InjectOutcome {
            inject_id: key.to_string(),
            session_id: e.session_id.clone(),
            submit: e.submit,
            duplicate: true,
            done,
        }))
    }

    /// Remember `key` for a message just queued; returns the receiver the first caller waits
    /// on (fed from the same outcome the retries see).
    pub fn remember(
        &self,
        key: &str,
        session_id: &str,
        submit: &'static str,
        first: oneshot::Receiver<Result<Delivered, EngineError>>,
    ) -> oneshot::Receiver<Result<Delivered, EngineError>> {
        let (otx, orx) = watch::channel(None);
        {
            let mut map = self.map.lock();
            map.retain(|_, e| e.at.elapsed() < TTL);
            if map.len() >= CAPACITY {
                if let Some(oldest) = map.iter().min_by_key(|(_, e)| e.at).map(|(k, _)| k.clone()) {
                    map.remove(&oldest);
                }
            }
            map.insert(
                key.to_string(),
                Entry {
                    session_id: session_id.to_string(),
                    submit,
                    at: Instant::now(),
                    outcome: orx,
                },
            );
        }
        let (tx, done) = oneshot::channel();
        tokio::spawn(async move {
            let r = first
                .await
                .unwrap_or_else(|_| Err(EngineError::disconnected("Session is closing.")));
            otx.send_replace(Some(r.clone()));
            let _ = tx.send(r);
        });
        done
    }
}
