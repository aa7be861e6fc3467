//! In-memory handoff and thread stores (API.md §10). Pure logic: the HTTP layer maps
//! `Reply`/`StoreError` onto responses and publishes `Reply::events` on the bus.

use std::collections::HashMap;

use serde_json::Value;

use crate::util::now_iso;

use crate::wire::{
    self,
    coord::{
        self, HandoffAck, HandoffDetail, HandoffStatus, HandoffSummary, Progress, ThreadAck,
        ThreadDetail, ThreadStatus, ThreadSummary,
    },
};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct StoreError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    /// Boxed: a `Value` would make every `Result<_, StoreError>` large.
    pub extra: Option<Box<(&'static str, Value)>>,
}

impl StoreError {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            extra: None,
        }
    }

    fn invalid(message: &str) -> Self {
        Self::new(400, "INVALID_REQUEST", message)
    }

    fn handoff_not_found() -> Self {
        Self::new(404, "HANDOFF_NOT_FOUND", "Handoff not found")
    }

    fn thread_not_found() -> Self {
        Self::new(404, "THREAD_NOT_FOUND", "Thread not found")
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Reply<B> {
    pub status: u16,
    pub body: B,
    /// Bus events to publish, in order, once the reply is committed.
    pub events: Vec<Value>,
}

impl HandoffStatus {
    fn as_str(self) -> &'static str {
        self.into()
    }

    fn can_become(self, to: Self) -> bool {
        use HandoffStatus::*;
        matches!(
            (self, to),
            (Pending, Claimed)
                | (Claimed, Executing)
                | (Claimed, Failed)
                | (Executing, Completed)
                | (Executing, Failed)
        )
    }
}

/// A handoff as `GET /api/handoff/:id` shows it, plus what its list item adds.
struct Handoff {
    detail: HandoffDetail,
    task_count: usize,
}

impl Handoff {
    fn summary(&self) -> HandoffSummary {
        let d = &self.detail;
        HandoffSummary {
            id: d.id.clone(),
            status: d.status,
            deliberation_id: d.deliberation_id.clone(),
            source_session_id: d.source_session_id.clone(),
            auto_execute: d.auto_execute,
            claimed_by: d.claimed_by.clone(),
            task_count: self.task_count,
            created_at: d.created_at.clone(),
            updated_at: d.updated_at.clone(),
        }
    }
}

fn thread_summary(t: &ThreadDetail) -> ThreadSummary {
    ThreadSummary {
        id: t.id.clone(),
        topic: t.topic.clone(),
        status: t.status,
        orchestrator_session_id: t.orchestrator_session_id.clone(),
        participant_count: t.participant_session_ids.len(),
        message_count: t.message_count.clone(),
        created_at: t.created_at.clone(),
        updated_at: t.updated_at.clone(),
    }
}

impl ThreadStatus {
    fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Items in creation order plus an id index, so lists need no sorting.
struct Ordered<T> {
    items: Vec<T>,
    index: HashMap<String, usize>,
}

impl<T> Default for Ordered<T> {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            index: HashMap::new(),
        }
    }
}

impl<T> Ordered<T> {
    fn insert(&mut self, id: String, item: T) {
        self.index.insert(id, self.items.len());
        self.items.push(item);
    }

    fn get(&self, id: &str) -> Option<&T> {
        self.index.get(id).map(|&i| &self.items[i])
    }

    fn get_mut(&mut self, id: &str) -> Option<&mut T> {
        self.index.get(id).map(|&i| &mut self.items[i])
    }
}

#[derive(Default)]
pub struct Coordination {
    handoffs: Ordered<Handoff>,
    threads: Ordered<ThreadDetail>,
}

/// An empty `?status=` means no filter, as in the original's truthiness check.
fn status_matches(filter: Option<&str>, status: &str) -> bool {
    filter.is_none_or(|f| f.is_empty() || f == status)
}

/// The create (201, no `success`), claim and patch answers.
fn handoff_ack(success: bool, id: &str, status: HandoffStatus) -> HandoffAck {
    HandoffAck {
        success,
        handoff_id: id.to_string(),
        status,
    }
}

fn thread_ack(success: bool, id: &str, status: ThreadStatus) -> ThreadAck {
    ThreadAck {
        success,
        thread_id: id.to_string(),
        status,
    }
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn field<'a>(body: &'a Value, key: &str) -> Option<&'a Value> {
    body.as_object().and_then(|o| o.get(key))
}

/// Optional string fields: anything that is not a string is treated as absent.
fn opt_string(body: &Value, key: &str) -> Option<String> {
    field(body, key).and_then(Value::as_str).map(str::to_string)
}

fn required_string(body: &Value, key: &str) -> Option<String> {
    field(body, key)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .map(str::to_string)
}

impl Coordination {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn create_handoff(&mut self, body: &Value) -> Result<Reply<HandoffAck>, StoreError> {
        let synthesis = match field(body, "synthesis") {
            Some(Value::Object(o)) => o.clone(),
            _ => return Err(StoreError::invalid("synthesis is required")),
        };
        let task_count = synthesis
            .get("tasks")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        let now = now_iso();
        let detail = HandoffDetail {
            id: new_id(),
            source_session_id: opt_string(body, "source_session_id"),
            deliberation_id: opt_string(body, "deliberation_id"),
            synthesis: Value::Object(synthesis),
            status: HandoffStatus::Pending,
            auto_execute: field(body, "auto_execute")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            claimed_by: None,
            created_at: now.clone(),
            updated_at: now.clone(),
            progress: Vec::new(),
            result: Value::Null,
        };
        let event = wire::value(&coord::HandoffCreated {
            kind: "handoff.created".into(),
            handoff_id: detail.id.clone(),
            source_session_id: detail.source_session_id.clone(),
            deliberation_id: detail.deliberation_id.clone(),
            auto_execute: detail.auto_execute,
            task_count,
            timestamp: now,
        });
        let body = handoff_ack(false, &detail.id, HandoffStatus::Pending);
        self.handoffs
            .insert(detail.id.clone(), Handoff { detail, task_count });
        Ok(Reply {
            status: 201,
            body,
            events: vec![event],
        })
    }

    pub fn list_handoffs(&self, status: Option<&str>) -> Vec<HandoffSummary> {
        self.handoffs
            .items
            .iter()
            .filter(|h| status_matches(status, h.detail.status.as_str()))
            .map(Handoff::summary)
            .collect()
    }

    pub fn get_handoff(&self, id: &str) -> Result<HandoffDetail, StoreError> {
        self.handoffs
            .get(id)
            .map(|h| h.detail.clone())
            .ok_or_else(StoreError::handoff_not_found)
    }

    pub fn claim_handoff(
        &mut self,
        id: &str,
        body: &Value,
    ) -> Result<Reply<HandoffAck>, StoreError> {
        let handoff = self.handoff_mut(id)?;
        // The conflict is reported before the body is validated so a racing claimer
        // learns who won even if its own request is malformed.
        if handoff.status != HandoffStatus::Pending {
            let message = format!("Handoff already {}", handoff.status.as_str());
            return Err(StoreError {
                extra: Some(Box::new(("claimed_by", wire::value(&handoff.claimed_by)))),
                ..StoreError::new(409, "HANDOFF_CONFLICT", message)
            });
        }
        let agent = required_string(body, "agent_session_id")
            .ok_or_else(|| StoreError::invalid("agent_session_id is required"))?;
        let now = now_iso();
        handoff.status = HandoffStatus::Claimed;
        handoff.claimed_by = Some(agent.clone());
        handoff.updated_at = now.clone();
        Ok(Reply {
            status: 200,
            body: handoff_ack(true, &handoff.id, HandoffStatus::Claimed),
            events: vec![wire::value(&coord::HandoffClaimed {
                kind: "handoff.claimed".into(),
                handoff_id: handoff.id.clone(),
                agent_session_id: agent,
                timestamp: now,
            })],
        })
    }

    pub fn patch_handoff(
        &mut self,
        id: &str,
        body: &Value,
    ) -> Result<Reply<HandoffAck>, StoreError> {
        let handoff = self.handoff_mut(id)?;
        // Validate everything before mutating, so a rejected PATCH changes nothing.
        let target = match field(body, "status") {
            None | Some(Value::Null) => None,
            Some(requested) => {
                let name = requested
                    .as_str()
                    .map_or_else(|| requested.to_string(), str::to_string);
                let to = serde_json::from_value::<HandoffStatus>(Value::String(name.clone())).ok();
                let from = handoff.status.as_str();
                let message = format!("Invalid transition: {from} -> {name}");
                let to = to.filter(|to| handoff.status.can_become(*to));
                Some(to.ok_or_else(|| StoreError::new(400, "INVALID_TRANSITION", message))?)
            }
        };
        let message = opt_string(body, "message");
        let now = now_iso();

        if let Some(to) = target {
            handoff.status = to;
            // A PATCH-driven claim may name its claimer; without one claimed_by stays as is.
            if to == HandoffStatus::Claimed
                && let Some(agent) = required_string(body, "agent_session_id")
            {
                handoff.claimed_by = Some(agent);
            }
        }
        if let Some(m) = &message {
            handoff.progress.push(Progress {
                message: m.clone(),
                timestamp: now.clone(),
            });
        }
        if let Some(result) = field(body, "result") {
            handoff.result = result.clone();
        }
        handoff.updated_at = now.clone();

        Ok(Reply {
            status: 200,
            body: handoff_ack(true, &handoff.id, handoff.status),
            events: vec![wire::value(&coord::HandoffChanged {
                kind: format!("handoff.{}", handoff.status.as_str()),
                handoff_id: handoff.id.clone(),
                claimed_by: handoff.claimed_by.clone(),
                message,
                timestamp: now,
            })],
        })
    }

    fn handoff_mut(&mut self, id: &str) -> Result<&mut HandoffDetail, StoreError> {
        let h = self.handoffs.get_mut(id);
        h.map(|h| &mut h.detail)
            .ok_or_else(StoreError::handoff_not_found)
    }

    pub fn create_thread(&mut self, body: &Value) -> Result<Reply<ThreadAck>, StoreError> {
        let topic = required_string(body, "topic")
            .ok_or_else(|| StoreError::invalid("topic is required"))?;
        let participants: Vec<Value> = field(body, "participant_session_ids")
            .and_then(Value::as_array)
            .map(|ids| ids.iter().filter(|v| v.is_string()).cloned().collect())
            .unwrap_or_default();
        let now = now_iso();
        let thread = ThreadDetail {
            id: new_id(),
            topic,
            orchestrator_session_id: opt_string(body, "orchestrator_session_id"),
            participant_session_ids: participants,
            context: field(body, "context").cloned().unwrap_or(Value::Null),
            status: ThreadStatus::Active,
            message_count: 0.into(),
            created_at: now.clone(),
            updated_at: now.clone(),
            closed_at: None,
        };
        let event = wire::value(&coord::ThreadOpened {
            kind: "thread.opened".into(),
            thread_id: thread.id.clone(),
            topic: thread.topic.clone(),
            orchestrator_session_id: thread.orchestrator_session_id.clone(),
            participant_session_ids: thread.participant_session_ids.clone(),
            timestamp: now,
        });
        let body = thread_ack(false, &thread.id, ThreadStatus::Active);
        self.threads.insert(thread.id.clone(), thread);
        Ok(Reply {
            status: 201,
            body,
            events: vec![event],
        })
    }

    pub fn list_threads(&self, status: Option<&str>) -> Vec<ThreadSummary> {
        self.threads
            .items
            .iter()
            .filter(|t| status_matches(status, t.status.as_str()))
            .map(thread_summary)
            .collect()
    }

    pub fn get_thread(&self, id: &str) -> Result<ThreadDetail, StoreError> {
        self.threads
            .get(id)
            .cloned()
            .ok_or_else(StoreError::thread_not_found)
    }

    pub fn patch_thread(&mut self, id: &str, body: &Value) -> Result<Reply<ThreadAck>, StoreError> {
        let thread = self
            .threads
            .get_mut(id)
            .ok_or_else(StoreError::thread_not_found)?;
        let now = now_iso();
        let mut changed = false;
        // Applied before the close so `thread.closed` carries the final count.
        if let Some(Value::Number(n)) = field(body, "message_count") {
            thread.message_count = n.clone();
            changed = true;
        }
        let mut events = Vec::new();
        let closing = field(body, "status").and_then(Value::as_str) == Some("closed");
        if closing && thread.status == ThreadStatus::Active {
            thread.status = ThreadStatus::Closed;
            thread.closed_at = Some(now.clone());
            changed = true;
            events.push(wire::value(&coord::ThreadClosed {
                kind: "thread.closed".into(),
                thread_id: thread.id.clone(),
                topic: thread.topic.clone(),
                message_count: thread.message_count.clone(),
                timestamp: now.clone(),
            }));
        }
        if changed {
            thread.updated_at = now;
        }
        Ok(Reply {
            status: 200,
            body: thread_ack(true, &thread.id, thread.status),
            events,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A reply with its body as JSON, for shape assertions.
    fn rv<B: serde::Serialize>(r: Reply<B>) -> Reply<Value> {
        Reply {
            status: r.status,
            body: wire::value(&r.body),
            events: r.events,
        }
    }

    /// Keys of a JSON object, for shape assertions.
    fn keys(v: &Value) -> Vec<&str> {
        let mut k: Vec<&str> = v
            .as_object()
            .map(serde_json::Map::keys)
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        k.sort_unstable();
        k
    }

    fn sorted(mut k: Vec<&str>) -> Vec<&str> {
        k.sort_unstable();
        k
    }

    fn is_iso_ms(v: &Value) -> bool {
        let s = v.as_str().unwrap_or("");
        s.len() == 24 && s.ends_with('Z') && s.as_bytes()[19] == b'.'
    }

    fn create(c: &mut Coordination, body: Value) -> String {
        let r = rv(c.create_handoff(&body).unwrap());
        r.body["handoff_id"].as_str().unwrap().to_string()
    }

    fn open(c: &mut Coordination, body: Value) -> String {
        let r = rv(c.create_thread(&body).unwrap());
        r.body["thread_id"].as_str().unwrap().to_string()
    }

    fn status_of(c: &Coordination, id: &str) -> String {
        wire::value(&c.get_handoff(id).unwrap())["status"]
            .as_str()
            .unwrap()
            .to_string()
    }

    // ---- handoffs ----

    #[test]
    fn create_handoff_reply_and_event() {
        let mut c = Coordination::default();
        let r = rv(c
            .create_handoff(&json!({
                "synthesis": {"summary": "x", "tasks": [1, 2, 3]},
                "source_session_id": "s1",
                "deliberation_id": "d1",
                "auto_execute": true,
            }))
            .unwrap());
        assert_eq!(r.status, 201);
        assert_eq!(keys(&r.body), vec!["handoff_id", "status"]);
        assert_eq!(r.body["status"], "pending");
        let id = r.body["handoff_id"].as_str().unwrap();
        let parsed = uuid::Uuid::parse_str(id).unwrap();
        assert_eq!(parsed.get_version_num(), 4);

        assert_eq!(r.events.len(), 1);
        let e = &r.events[0];
        assert_eq!(
            keys(e),
            sorted(vec![
                "type",
                "handoff_id",
                "source_session_id",
                "deliberation_id",
                "auto_execute",
                "task_count",
                "timestamp"
            ])
        );
        assert_eq!(e["type"], "handoff.created");
        assert_eq!(e["handoff_id"], id);
        assert_eq!(e["source_session_id"], "s1");
        assert_eq!(e["deliberation_id"], "d1");
        assert_eq!(e["auto_execute"], true);
        assert_eq!(e["task_count"], 3);
        assert!(is_iso_ms(&e["timestamp"]));
    }

    #[test]
    fn create_handoff_defaults() {
        let mut c = Coordination::default();
        let r = rv(c.create_handoff(&json!({"synthesis": {}})).unwrap());
        let e = &r.events[0];
        assert_eq!(e["source_session_id"], Value::Null);
        assert_eq!(e["deliberation_id"], Value::Null);
        assert_eq!(e["auto_execute"], false);
        assert_eq!(e["task_count"], 0);
        // `tasks` that is not an array counts as zero; non-bool auto_execute is false.
        let r = rv(c.create_handoff(&json!({"synthesis": {"tasks": "a,b"}, "auto_execute": "yes", "source_session_id": 7})).unwrap());
        assert_eq!(r.events[0]["task_count"], 0);
        assert_eq!(r.events[0]["auto_execute"], false);
        assert_eq!(r.events[0]["source_session_id"], Value::Null);
    }

    #[test]
    fn create_handoff_requires_object_synthesis() {
        let mut c = Coordination::default();
        for body in [
            json!({}),
            json!({"synthesis": null}),
            json!({"synthesis": [1]}),
            json!({"synthesis": "text"}),
            json!({"synthesis": 3}),
        ] {
            let e = c.create_handoff(&body).unwrap_err();
            assert_eq!(e.status, 400);
            assert_eq!(e.code, "INVALID_REQUEST");
            assert_eq!(e.message, "synthesis is required");
            assert_eq!(e.extra, None);
        }
        assert_eq!(wire::value(&c.list_handoffs(None)), json!([]));
    }

    #[test]
    fn get_handoff_shape() {
        let mut c = Coordination::default();
        let id = create(
            &mut c,
            json!({"synthesis": {"tasks": [{"t": 1}]}, "deliberation_id": "d"}),
        );
        let h = wire::value(&c.get_handoff(&id).unwrap());
        assert_eq!(
            keys(&h),
            sorted(vec![
                "id",
                "source_session_id",
                "deliberation_id",
                "synthesis",
                "status",
                "auto_execute",
                "claimed_by",
                "created_at",
                "updated_at",
                "progress",
                "result"
            ])
        );
        assert_eq!(h["id"], id.as_str());
        assert_eq!(h["synthesis"], json!({"tasks": [{"t": 1}]}));
        assert_eq!(h["status"], "pending");
        assert_eq!(h["auto_execute"], false);
        assert_eq!(h["claimed_by"], Value::Null);
        assert_eq!(h["source_session_id"], Value::Null);
        assert_eq!(h["deliberation_id"], "d");
        assert_eq!(h["progress"], json!([]));
        assert_eq!(h["result"], Value::Null);
        assert!(is_iso_ms(&h["created_at"]));
        assert_eq!(h["created_at"], h["updated_at"]);

        let e = c.get_handoff("nope").unwrap_err();
        assert_eq!(
            (e.status, e.code, e.message.as_str()),
            (404, "HANDOFF_NOT_FOUND", "Handoff not found")
        );
    }

    #[test]
    fn list_handoffs_order_shape_and_filter() {
        let mut c = Coordination::default();
        let a = create(&mut c, json!({"synthesis": {"tasks": [1, 2]}}));
        let b = create(&mut c, json!({"synthesis": {}, "source_session_id": "s"}));
        let d = create(&mut c, json!({"synthesis": {}}));
        rv(c.claim_handoff(&b, &json!({"agent_session_id": "agent"}))
            .unwrap());

        let all = wire::value(&c.list_handoffs(None));
        let ids: Vec<&str> = all
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, vec![a.as_str(), b.as_str(), d.as_str()]);
        assert_eq!(
            keys(&all[0]),
            sorted(vec![
                "id",
                "status",
                "deliberation_id",
                "source_session_id",
                "auto_execute",
                "claimed_by",
                "task_count",
                "created_at",
                "updated_at"
            ])
        );
        assert_eq!(all[0]["task_count"], 2);
        assert_eq!(all[1]["claimed_by"], "agent");
        assert_eq!(all[1]["source_session_id"], "s");

        let pending = wire::value(&c.list_handoffs(Some("pending")));
        assert_eq!(pending.as_array().unwrap().len(), 2);
        assert_eq!(pending[1]["id"], d.as_str());
        let claimed = wire::value(&c.list_handoffs(Some("claimed")));
        assert_eq!(claimed.as_array().unwrap().len(), 1);
        assert_eq!(claimed[0]["id"], b.as_str());
        assert_eq!(wire::value(&c.list_handoffs(Some("completed"))), json!([]));
        assert_eq!(wire::value(&c.list_handoffs(Some("bogus"))), json!([]));
        assert_eq!(wire::value(&c.list_handoffs(Some(""))), all);
    }

    #[test]
    fn claim_handoff_success_and_event() {
        let mut c = Coordination::default();
        let id = create(&mut c, json!({"synthesis": {}}));
        let r = rv(c
            .claim_handoff(&id, &json!({"agent_session_id": "worker-1"}))
            .unwrap());
        assert_eq!(r.status, 200);
        assert_eq!(
            r.body,
            json!({"success": true, "handoff_id": id, "status": "claimed"})
        );
        assert_eq!(r.events.len(), 1);
        let e = &r.events[0];
        assert_eq!(
            keys(e),
            sorted(vec!["type", "handoff_id", "agent_session_id", "timestamp"])
        );
        assert_eq!(e["type"], "handoff.claimed");
        assert_eq!(e["agent_session_id"], "worker-1");
        let h = wire::value(&c.get_handoff(&id).unwrap());
        assert_eq!(h["status"], "claimed");
        assert_eq!(h["claimed_by"], "worker-1");
    }

    #[test]
    fn claim_errors() {
        let mut c = Coordination::default();
        let e = c
            .claim_handoff("missing", &json!({"agent_session_id": "a"}))
            .unwrap_err();
        assert_eq!((e.status, e.code), (404, "HANDOFF_NOT_FOUND"));

        let id = create(&mut c, json!({"synthesis": {}}));
        for body in [
            json!({}),
            json!({"agent_session_id": ""}),
            json!({"agent_session_id": "  "}),
            json!({"agent_session_id": 5}),
            json!({"agent_session_id": null}),
        ] {
            let e = c.claim_handoff(&id, &body).unwrap_err();
            assert_eq!(
                (e.status, e.code, e.message.as_str()),
                (400, "INVALID_REQUEST", "agent_session_id is required")
            );
        }
        assert_eq!(status_of(&c, &id), "pending");

        rv(c.claim_handoff(&id, &json!({"agent_session_id": "first"}))
            .unwrap());
        // Conflict is reported even when the body is invalid.
        for body in [json!({"agent_session_id": "second"}), json!({})] {
            let e = c.claim_handoff(&id, &body).unwrap_err();
            assert_eq!(e.status, 409);
            assert_eq!(e.code, "HANDOFF_CONFLICT");
            assert_eq!(e.message, "Handoff already claimed");
            assert_eq!(e.extra, Some(Box::new(("claimed_by", json!("first")))));
        }

        rv(c.patch_handoff(&id, &json!({"status": "executing"}))
            .unwrap());
        let e = c.claim_handoff(&id, &json!({})).unwrap_err();
        assert_eq!(e.message, "Handoff already executing");
    }

    #[test]
    fn conflict_claimed_by_null_after_patch_claim() {
        let mut c = Coordination::default();
        let id = create(&mut c, json!({"synthesis": {}}));
        let r = rv(c.patch_handoff(&id, &json!({"status": "claimed"})).unwrap());
        assert_eq!(r.body["status"], "claimed");
        assert_eq!(r.events[0]["type"], "handoff.claimed");
        assert_eq!(r.events[0]["claimed_by"], Value::Null);
        let e = c
            .claim_handoff(&id, &json!({"agent_session_id": "x"}))
            .unwrap_err();
        assert_eq!(e.extra, Some(Box::new(("claimed_by", Value::Null))));
    }

    #[test]
    fn patch_claim_may_name_claimer() {
        let mut c = Coordination::default();
        let id = create(&mut c, json!({"synthesis": {}}));
        let r = rv(c
            .patch_handoff(&id, &json!({"status": "claimed", "agent_session_id": "w"}))
            .unwrap());
        assert_eq!(r.events[0]["claimed_by"], "w");
    }

    #[test]
    fn valid_transitions() {
        for path in [
            vec!["claimed", "executing", "completed"],
            vec!["claimed", "executing", "failed"],
            vec!["claimed", "failed"],
        ] {
            let mut c = Coordination::default();
            let id = create(&mut c, json!({"synthesis": {}}));
            for to in path {
                let r = rv(c.patch_handoff(&id, &json!({"status": to})).unwrap());
                assert_eq!(r.status, 200);
                assert_eq!(
                    r.body,
                    json!({"success": true, "handoff_id": id, "status": to})
                );
                assert_eq!(r.events[0]["type"], format!("handoff.{to}"));
                assert_eq!(status_of(&c, &id), to);
            }
        }
    }

    #[test]
    fn invalid_transitions() {
        let cases: &[(&[&str], Value)] = &[
            (&[], json!("executing")),
            (&[], json!("completed")),
            (&[], json!("failed")),
            (&[], json!("pending")),
            (&[], json!("bogus")),
            (&["claimed"], json!("claimed")),
            (&["claimed"], json!("completed")),
            (&["claimed"], json!("pending")),
            (&["claimed", "executing"], json!("claimed")),
            (&["claimed", "executing"], json!("executing")),
            (&["claimed", "executing", "completed"], json!("failed")),
            (&["claimed", "failed"], json!("executing")),
            (&["claimed", "failed"], json!("completed")),
        ];
        for (setup, to) in cases {
            let mut c = Coordination::default();
            let id = create(&mut c, json!({"synthesis": {}}));
            for s in *setup {
                rv(c.patch_handoff(&id, &json!({"status": s})).unwrap());
            }
            let before = wire::value(&c.get_handoff(&id).unwrap());
            let from = before["status"].as_str().unwrap().to_string();
            let e = c
                .patch_handoff(&id, &json!({"status": to, "message": "m", "result": 1}))
                .unwrap_err();
            assert_eq!(e.status, 400);
            assert_eq!(e.code, "INVALID_TRANSITION");
            assert_eq!(
                e.message,
                format!("Invalid transition: {from} -> {}", to.as_str().unwrap())
            );
            // Nothing changed.
            assert_eq!(wire::value(&c.get_handoff(&id).unwrap()), before);
        }
        let mut c = Coordination::default();
        let id = create(&mut c, json!({"synthesis": {}}));
        let e = c.patch_handoff(&id, &json!({"status": 5})).unwrap_err();
        assert_eq!(e.message, "Invalid transition: pending -> 5");
    }

    #[test]
    fn patch_message_and_result_without_status() {
        let mut c = Coordination::default();
        let id = create(&mut c, json!({"synthesis": {}}));
        rv(c.claim_handoff(&id, &json!({"agent_session_id": "w"}))
            .unwrap());
        let r = rv(c.patch_handoff(&id, &json!({"message": "step 1"})).unwrap());
        assert_eq!(r.body["status"], "claimed");
        let e = &r.events[0];
        assert_eq!(
            keys(e),
            sorted(vec![
                "type",
                "handoff_id",
                "claimed_by",
                "message",
                "timestamp"
            ])
        );
        assert_eq!(e["type"], "handoff.claimed");
        assert_eq!(e["claimed_by"], "w");
        assert_eq!(e["message"], "step 1");

        let r = rv(c
            .patch_handoff(
                &id,
                &json!({"status": "executing", "message": "step 2", "result": {"ok": true}}),
            )
            .unwrap());
        assert_eq!(r.events[0]["type"], "handoff.executing");
        let r = rv(c.patch_handoff(&id, &json!({})).unwrap());
        assert_eq!(r.events[0]["type"], "handoff.executing");
        assert_eq!(r.events[0]["message"], Value::Null);

        let h = wire::value(&c.get_handoff(&id).unwrap());
        let progress = h["progress"].as_array().unwrap();
        assert_eq!(progress.len(), 2);
        assert_eq!(progress[0]["message"], "step 1");
        assert_eq!(progress[1]["message"], "step 2");
        assert_eq!(keys(&progress[0]), vec!["message", "timestamp"]);
        assert!(is_iso_ms(&progress[0]["timestamp"]));
        assert_eq!(h["result"], json!({"ok": true}));
        assert!(h["updated_at"].as_str() >= h["created_at"].as_str());

        let r = rv(c
            .patch_handoff(&id, &json!({"status": "completed", "status_extra": 1}))
            .unwrap());
        assert_eq!(r.events[0]["type"], "handoff.completed");
        assert_eq!(r.events[0]["claimed_by"], "w");
        // Terminal states still accept messages.
        let r = rv(c.patch_handoff(&id, &json!({"message": "late"})).unwrap());
        assert_eq!(r.events[0]["type"], "handoff.completed");
    }

    #[test]
    fn patch_unknown_handoff() {
        let mut c = Coordination::default();
        let e = c
            .patch_handoff("x", &json!({"status": "claimed"}))
            .unwrap_err();
        assert_eq!(
            (e.status, e.code, e.message.as_str()),
            (404, "HANDOFF_NOT_FOUND", "Handoff not found")
        );
    }

    // ---- threads ----

    #[test]
    fn create_thread_reply_and_event() {
        let mut c = Coordination::default();
        let r = rv(c
            .create_thread(&json!({
                "topic": "design",
                "orchestrator_session_id": "orc",
                "participant_session_ids": ["a", "b"],
                "context": {"k": 1},
            }))
            .unwrap());
        assert_eq!(r.status, 201);
        assert_eq!(keys(&r.body), vec!["status", "thread_id"]);
        assert_eq!(r.body["status"], "active");
        let id = r.body["thread_id"].as_str().unwrap();
        assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 4);
        let e = &r.events[0];
        assert_eq!(
            keys(e),
            sorted(vec![
                "type",
                "thread_id",
                "topic",
                "orchestrator_session_id",
                "participant_session_ids",
                "timestamp"
            ])
        );
        assert_eq!(e["type"], "thread.opened");
        assert_eq!(e["thread_id"], id);
        assert_eq!(e["topic"], "design");
        assert_eq!(e["orchestrator_session_id"], "orc");
        assert_eq!(e["participant_session_ids"], json!(["a", "b"]));
        assert!(is_iso_ms(&e["timestamp"]));

        let t = wire::value(&c.get_thread(id).unwrap());
        assert_eq!(
            keys(&t),
            sorted(vec![
                "id",
                "topic",
                "orchestrator_session_id",
                "participant_session_ids",
                "context",
                "status",
                "message_count",
                "created_at",
                "updated_at",
                "closed_at"
            ])
        );
        assert_eq!(t["context"], json!({"k": 1}));
        assert_eq!(t["message_count"], 0);
        assert_eq!(t["closed_at"], Value::Null);
        assert_eq!(t["status"], "active");
    }

    #[test]
    fn create_thread_defaults_and_errors() {
        let mut c = Coordination::default();
        let r = rv(c.create_thread(&json!({"topic": "t"})).unwrap());
        let e = &r.events[0];
        assert_eq!(e["orchestrator_session_id"], Value::Null);
        assert_eq!(e["participant_session_ids"], json!([]));
        let t = wire::value(&c.get_thread(r.body["thread_id"].as_str().unwrap()).unwrap());
        assert_eq!(t["context"], Value::Null);
        assert_eq!(t["participant_session_ids"], json!([]));

        for body in [
            json!({}),
            json!({"topic": ""}),
            json!({"topic": "   "}),
            json!({"topic": 3}),
            json!({"topic": null}),
        ] {
            let e = c.create_thread(&body).unwrap_err();
            assert_eq!(
                (e.status, e.code, e.message.as_str()),
                (400, "INVALID_REQUEST", "topic is required")
            );
        }
        assert_eq!(
            wire::value(&c.list_threads(None)).as_array().unwrap().len(),
            1
        );
    }

    #[test]
    fn list_threads_order_shape_and_filter() {
        let mut c = Coordination::default();
        let a = open(
            &mut c,
            json!({"topic": "a", "participant_session_ids": ["x", "y", "z"]}),
        );
        let b = open(&mut c, json!({"topic": "b"}));
        rv(c.patch_thread(&a, &json!({"status": "closed"})).unwrap());

        let all = wire::value(&c.list_threads(None));
        assert_eq!(all[0]["id"], a.as_str());
        assert_eq!(all[1]["id"], b.as_str());
        assert_eq!(
            keys(&all[0]),
            sorted(vec![
                "id",
                "topic",
                "status",
                "orchestrator_session_id",
                "participant_count",
                "message_count",
                "created_at",
                "updated_at"
            ])
        );
        assert_eq!(all[0]["participant_count"], 3);
        assert_eq!(all[1]["participant_count"], 0);

        let active = wire::value(&c.list_threads(Some("active")));
        assert_eq!(active.as_array().unwrap().len(), 1);
        assert_eq!(active[0]["id"], b.as_str());
        let closed = wire::value(&c.list_threads(Some("closed")));
        assert_eq!(closed[0]["id"], a.as_str());
        assert_eq!(wire::value(&c.list_threads(Some("archived"))), json!([]));
        assert_eq!(wire::value(&c.list_threads(Some(""))), all);
    }

    #[test]
    fn patch_thread_close_and_count() {
        let mut c = Coordination::default();
        let id = open(&mut c, json!({"topic": "topic"}));
        let r = rv(c.patch_thread(&id, &json!({"message_count": 4})).unwrap());
        assert_eq!(r.status, 200);
        assert_eq!(
            r.body,
            json!({"success": true, "thread_id": id, "status": "active"})
        );
        assert!(r.events.is_empty());
        assert_eq!(wire::value(&c.get_thread(&id).unwrap())["message_count"], 4);

        let r = rv(c
            .patch_thread(&id, &json!({"status": "closed", "message_count": 9}))
            .unwrap());
        assert_eq!(r.body["status"], "closed");
        assert_eq!(r.events.len(), 1);
        let e = &r.events[0];
        assert_eq!(
            keys(e),
            sorted(vec![
                "type",
                "thread_id",
                "topic",
                "message_count",
                "timestamp"
            ])
        );
        assert_eq!(e["type"], "thread.closed");
        assert_eq!(e["thread_id"], id.as_str());
        assert_eq!(e["topic"], "topic");
        assert_eq!(e["message_count"], 9);
        let t = wire::value(&c.get_thread(&id).unwrap());
        assert_eq!(t["status"], "closed");
        assert!(is_iso_ms(&t["closed_at"]));
        let closed_at = t["closed_at"].clone();

        // Closing again, or trying to reopen, is ignored without an event.
        for body in [json!({"status": "closed"}), json!({"status": "active"})] {
            let r = rv(c.patch_thread(&id, &body).unwrap());
            assert_eq!(r.status, 200);
            assert_eq!(r.body["status"], "closed");
            assert!(r.events.is_empty());
        }
        assert_eq!(
            wire::value(&c.get_thread(&id).unwrap())["closed_at"],
            closed_at
        );
        // message_count still applies to a closed thread.
        rv(c.patch_thread(&id, &json!({"message_count": 12})).unwrap());
        assert_eq!(
            wire::value(&c.get_thread(&id).unwrap())["message_count"],
            12
        );
    }

    #[test]
    fn patch_thread_ignores_bad_fields() {
        let mut c = Coordination::default();
        let id = open(&mut c, json!({"topic": "t"}));
        for body in [
            json!({"message_count": "7"}),
            json!({"message_count": null}),
            json!({"status": "archived"}),
            json!({"status": 1}),
            json!({}),
        ] {
            let r = rv(c.patch_thread(&id, &body).unwrap());
            assert_eq!(r.body["status"], "active");
            assert!(r.events.is_empty());
        }
        let t = wire::value(&c.get_thread(&id).unwrap());
        assert_eq!(t["message_count"], 0);
        assert_eq!(t["status"], "active");
        rv(c.patch_thread(&id, &json!({"message_count": 2.5})).unwrap());
        assert_eq!(
            wire::value(&c.get_thread(&id).unwrap())["message_count"],
            2.5
        );
    }

    #[test]
    fn thread_not_found() {
        let mut c = Coordination::default();
        let e = c.get_thread("x").unwrap_err();
        assert_eq!(
            (e.status, e.code, e.message.as_str()),
            (404, "THREAD_NOT_FOUND", "Thread not found")
        );
        let e = c
            .patch_thread("x", &json!({"status": "closed"}))
            .unwrap_err();
        assert_eq!(e.code, "THREAD_NOT_FOUND");
    }

    #[test]
    fn handoffs_and_threads_are_separate() {
        let mut c = Coordination::new();
        let h = create(&mut c, json!({"synthesis": {}}));
        let t = open(&mut c, json!({"topic": "t"}));
        assert!(c.get_thread(&h).is_err());
        assert!(c.get_handoff(&t).is_err());
    }
}
