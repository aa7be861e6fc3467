//! Engine operations: everything the API and the dashboard can ask of sessions.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use tokio::sync::oneshot;

use super::error::EngineError;
use super::mailbox::{Delivered, Message, Source};
use super::session::{Client, ClientRx, Kind, Meta, PendingReport, Session, client_channel};
use super::terminal::Terminal;
use super::{Engine, keys, tasks};
use crate::util::{now_iso, valid_session_id};
use crate::wire::request::{Fields, InjectRequest};
use crate::wire::response::{Registration, Spawned, StateView, TargetOk};
use crate::wire::{self, Event, Frame, event as ev};

const CELL_BYTES: usize = 32;

/// A spawn as the engine runs it (the HTTP body is `wire::request::SpawnRequest`).
pub struct SpawnSpec {
    pub id: String,
    pub command: String,
    pub args: Vec<String>,
    pub cwd: Option<String>,
    pub cols: u16,
    pub rows: u16,
    /// "AGENT" or "USER": only the colour of the prompt badge.
    pub prompt_type: String,
    /// Record the session as asciicast (also on when recording is configured for all).
    pub record: bool,
    /// Extra environment for the child, over the daemon's own (a resurrection passes the
    /// allowlisted values the session had). `TERM` and `TELEPTY_SESSION_ID` still win.
    pub env: Vec<(String, String)>,
    /// The agent profile to use (`assets/profiles`); `None`: chosen by the command.
    pub profile: Option<String>,
}

#[derive(Default)]
pub struct RegisterRequest {
    pub id: String,
    pub command: Option<String>,
    pub cwd: Option<String>,
    pub backend: Option<String>,
    pub cmux_workspace_id: Option<String>,
    pub cmux_surface_id: Option<String>,
    /// Outer `None`: key absent; `Some(None)`: explicit null (clears it).
    pub term_program: Option<Option<String>>,
    pub term: Option<Option<String>>,
    pub aterm: bool,
    pub delivery_endpoint: Option<String>,
    pub delivery: Option<Value>,
    pub cols: Option<u16>,
    pub rows: Option<u16>,
    pub record: bool,
}

/// What `register` did: the API answers 201 for a new session, 200 for an update.
pub enum RegisterOutcome {
    Created(Registration),
    Reregistered(Registration),
}

pub struct InjectOutcome {
    pub inject_id: String,
    pub session_id: String,
    pub submit: &'static str,
    /// The client's `inject_id` was seen before: nothing new was queued, `done` resolves with
    /// the first request's delivery.
    pub duplicate: bool,
    /// Resolves once the message was delivered (or finally failed).
    pub done: oneshot::Receiver<Result<Delivered, EngineError>>,
}

/// Who an inject came from, for `inject_failed` events.
struct Who<'a> {
    inject_id: &'a str,
    from: &'a Option<String>,
    reply_to: &'a Option<String>,
    source: Source,
}

/// One target of multicast / broadcast / submit-all.
pub enum TargetResult {
    Ok(String),
    Failed {
        id: String,
        code: &'static str,
        error: String,
    },
}

pub(crate) fn strip_env_for_child() -> Vec<String> {
    let mut v: Vec<String> = std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .filter(|k| k.starts_with("CLAUDECODE_"))
        .collect();
    v.extend(["CLAUDECODE", "CODEX_CI", "CODEX_THREAD_ID"].map(String::from));
    v
}

fn prompt_env(command: &str, id: &str, prompt_type: &str) -> Vec<(String, String)> {
    let user = prompt_type == "USER";
    let mut env = Vec::new();
    if command.contains("bash") {
        let c = if user { 32 } else { 35 };
        env.push((
            "PS1".into(),
            format!("\\[\\e[{c}m\\][{prompt_type}: {id}]\\[\\e[0m\\] \\w \\$ "),
        ));
    }
    if command.contains("zsh") {
        let c = if user { "green" } else { "magenta" };
        env.push((
            "PROMPT".into(),
            format!("%F{{{c}}}[{prompt_type}: {id}]%f %~ %# "),
        ));
        env.push(("DISABLE_AUTO_TITLE".into(), "true".into()));
    }
    env
}

impl Engine {
    /// Start an asciicast recording of `term` when asked for or configured for all sessions.
    pub(super) fn attach_recorder(
        &self,
        term: &Terminal,
        id: &str,
        asked: bool,
        cols: u16,
        rows: u16,
    ) {
        let st = &self.shared.settings;
        if !(asked || st.record_all) {
            return;
        }
        let path = super::recording::new_path(&st.recordings_dir, id);
        match super::recording::Recorder::new(&path, id, cols, rows, st.record_masks.clone()) {
            Ok(r) => term.set_recorder(Arc::new(r)),
            Err(e) => tracing::warn!("cannot record {id} to {}: {e}", path.display()),
        }
    }

    /// Checks 2 and 3 of spawn (invalid id, id held by a live session).
    pub fn check_spawn_id(&self, id: &str) -> Result<(), EngineError> {
        EngineError::check_id(id)?;
        if let Some(s) = self.get_exact(id) {
            if !(s.kind == Kind::Spawned && s.exited()) {
                return Err(EngineError::SessionActive(id.to_string()));
            }
        }
        Ok(())
    }

    /// Scrollback for a new session: the configured cap, shrunk so that all sessions together
    /// stay within the memory budget.
    pub(super) fn scrollback_for(&self, cols: u16) -> usize {
        let st = &self.shared.settings;
        let n = self.shared.registry().sessions.len() + 1;
        let per_session = st.memory_budget_bytes / n;
        let lines = per_session / (cols.max(1) as usize * CELL_BYTES);
        st.scrollback_lines.min(lines)
    }

    pub fn spawn(&self, req: SpawnSpec) -> Result<Spawned, EngineError> {
        self.check_spawn_id(&req.id)?;
        if let Some(name) = &req.profile {
            let profiles = &self.shared.settings.profiles;
            if profiles.get(name).is_none() {
                let known: Vec<&str> = profiles.names().collect();
                return Err(EngineError::InvalidRequest(format!(
                    "unknown profile: {name} (known: {})",
                    known.join(", ")
                )));
            }
        }
        let cwd = req
            .cwd
            .clone()
            .unwrap_or_else(|| self.shared.settings.daemon_cwd.display().to_string());
        check_spawnable(&req.command, &cwd, child_var(&req.env, "PATH").as_deref())?;
        let mut env = req.env.clone();
        env.extend([
            ("TERM".to_string(), "xterm-256color".to_string()),
            ("TELEPTY_SESSION_ID".to_string(), req.id.clone()),
        ]);
        env.extend(prompt_env(&req.command, &req.id, &req.prompt_type));
        let term = Arc::new(Terminal::new(
            req.rows,
            req.cols,
            self.scrollback_for(req.cols),
        ));
        self.attach_recorder(&term, &req.id, req.record, req.cols, req.rows);
        let created = SystemTime::now();
        let holder_meta = super::holders::HolderMeta {
            id: req.id.clone(),
            command: req.command.clone(),
            args: req.args.clone(),
            cwd: cwd.clone(),
            cols: req.cols,
            rows: req.rows,
            window_size: None,
            created_at: Some(crate::util::iso(created)),
            record: term.recorder().is_some(),
            env: captured_env(&self.shared.settings.env_allowlist, &req.env),
            profile: req.profile.clone(),
        };
        let spec = crate::holder::Spec {
            command: req.command.clone(),
            args: req.args.clone(),
            cwd: cwd.clone().into(),
            cols: req.cols,
            rows: req.rows,
            env,
            env_remove: strip_env_for_child(),
            meta: holder_meta.to_value(),
        };
        let st = &self.shared.settings;
        let att = crate::holder::client::spawn(&st.holder_exe, &st.runtime_dir, &spec)?;
        // A program that ended at once did so before we attached: the holder says so here.
        let early_exit = att.exit.map(|st| (att.child_pid, st));
        // Replay too: the holder may have read the first output before we attached.
        let (pty, done) = self.attach_holder(att, term.clone(), true)?;
        let now = created;
        let s = self.spawned_session(&holder_meta, created, now, term, pty, done);
        {
            let mut reg = self.shared.registry_mut();
            if let Some(old) = reg.sessions.get(&req.id) {
                if !(old.kind == Kind::Spawned && old.exited()) {
                    // Lost a race with another spawn of the same id.
                    drop(reg);
                    if let Some(p) = &s.pty {
                        p.kill(0);
                    }
                    return Err(EngineError::SessionActive(req.id));
                }
                old.queue.close();
                // The exited session it replaces still has a holder (keeping its status).
                if let Some(p) = &old.pty {
                    p.kill(0);
                }
            }
            reg.aliases.remove(&req.id);
            reg.sessions.insert(req.id.clone(), s.clone());
        }
        self.start_delivery(&s);
        self.shared.emit(Event::SessionSpawn(ev::SessionCreated {
            sender: ev::DAEMON.into(),
            session_id: req.id.clone(),
            command: req.command.clone(),
            cwd: cwd.clone(),
            timestamp: now_iso(),
        }));
        // After session_spawn, so the bus tells the story in order.
        if let Some((pid, st)) = early_exit {
            let _ = self.shared.exits.send((pid, Some(st)));
        }
        self.shared.request_persist();
        Ok(Spawned {
            session_id: req.id,
            command: req.command,
            cwd,
        })
    }

    /// `POST /api/sessions/register`: a new session, or an update of the live one.
    pub fn register(&self, req: RegisterRequest) -> Result<RegisterOutcome, EngineError> {
        EngineError::check_id(&req.id)?;
        let daemon_cwd = self.shared.settings.daemon_cwd.display().to_string();
        if let Some(s) = self.get_exact(&req.id) {
            if !(s.kind == Kind::Spawned && s.exited()) {
                let body = {
                    let mut m = s.meta();
                    // What the request names replaces what the session had.
                    fn update<T: Clone, F: From<T>>(field: &mut F, given: &Option<T>) {
                        if let Some(v) = given {
                            *field = v.clone().into();
                        }
                    }
                    update(&mut m.term_program, &req.term_program);
                    update(&mut m.term, &req.term);
                    update(&mut m.backend, &req.backend);
                    if s.kind != Kind::Spawned {
                        update(&mut m.command, &req.command);
                        update(&mut m.cwd, &req.cwd);
                        update(&mut m.cmux_workspace_id, &req.cmux_workspace_id);
                        update(&mut m.cmux_surface_id, &req.cmux_surface_id);
                        update(&mut m.delivery, &req.delivery);
                        update(&mut m.delivery_endpoint, &req.delivery_endpoint);
                        if req.aterm {
                            m.ready = true;
                            m.endpoint_ok = true;
                            m.last_connected_at = Some(SystemTime::now());
                        }
                    }
                    Registration {
                        session_id: req.id.clone(),
                        kind: s.kind.as_str().into(),
                        command: m.command.clone(),
                        cwd: m.cwd.clone(),
                        reregistered: true,
                    }
                };
                if s.kind == Kind::Wrapped {
                    if let (Some(c), Some(r)) = (req.cols, req.rows) {
                        s.term.resize(r, c);
                    }
                }
                self.shared.request_persist();
                return Ok(RegisterOutcome::Reregistered(body));
            }
        }
        let (kind, backend) = if req.aterm {
            (Kind::Aterm, "aterm")
        } else {
            (Kind::Wrapped, "pty")
        };
        let now = SystemTime::now();
        let command = req.command.clone().unwrap_or_else(|| "wrapped".into());
        let cwd = req.cwd.clone().unwrap_or(daemon_cwd);
        let endpoint_ok = match req.delivery_endpoint.as_deref() {
            Some(p) if p.starts_with('/') => tasks::socket_exists(p),
            Some(_) => true,
            None => false,
        };
        let meta = Meta {
            command: command.clone(),
            cwd: cwd.clone(),
            backend: req.backend.clone().unwrap_or_else(|| backend.into()),
            term_program: req.term_program.clone().flatten(),
            term: req.term.clone().flatten(),
            cmux_workspace_id: req.cmux_workspace_id.clone(),
            cmux_surface_id: req.cmux_surface_id.clone(),
            delivery: req.delivery.clone(),
            delivery_endpoint: req.delivery_endpoint.clone(),
            created_at: Some(now),
            last_activity_at: Some(now),
            last_connected_at: if req.aterm { Some(now) } else { None },
            last_disconnected_at: if req.aterm { None } else { Some(now) },
            ready: req.aterm,
            endpoint_ok,
            ..Default::default()
        };
        let (cols, rows) = (req.cols.unwrap_or(80), req.rows.unwrap_or(30));
        let s = self.new_session(kind, req.id.clone(), meta, cols, rows);
        if kind == Kind::Wrapped {
            self.attach_recorder(&s.term, &req.id, req.record, cols, rows);
        }
        let base = base_alias(&req.id);
        let replaced = {
            let mut reg = self.shared.registry_mut();
            let old = reg
                .ordered()
                .into_iter()
                .map(|o| o.id())
                .filter(|o| o != &req.id && base_alias(o) == base)
                .last();
            if let Some(old_id) = &old {
                if base != req.id {
                    reg.aliases.insert(base.to_string(), req.id.clone());
                }
                reg.aliases.insert(old_id.clone(), req.id.clone());
            }
            reg.aliases.remove(&req.id);
            if let Some(prev) = reg.sessions.insert(req.id.clone(), s.clone()) {
                prev.queue.close();
            }
            old
        };
        self.start_delivery(&s);
        self.shared.emit(Event::SessionRegister(ev::SessionCreated {
            sender: ev::DAEMON.into(),
            session_id: req.id.clone(),
            command: command.clone(),
            cwd: cwd.clone(),
            timestamp: now_iso(),
        }));
        if let Some(old_id) = replaced {
            self.shared
                .emit(Event::SessionReplaced(ev::SessionReplaced {
                    sender: ev::DAEMON.into(),
                    old_id,
                    new_id: req.id.clone(),
                    alias: base.to_string(),
                    timestamp: now_iso(),
                }));
        }
        self.shared.request_persist();
        Ok(RegisterOutcome::Created(Registration {
            session_id: req.id,
            kind: "wrapped".into(),
            command,
            cwd,
            reregistered: false,
        }))
    }

    /// `PATCH /api/sessions/:id`: returns (old_id, new_id).
    pub fn rename(&self, requested: &str, new_id: &str) -> Result<(String, String), EngineError> {
        let s = self.resolve(requested)?;
        EngineError::check_id(new_id)?;
        let old_id = s.id();
        if old_id == new_id {
            return Ok((old_id, new_id.to_string()));
        }
        {
            let mut reg = self.shared.registry_mut();
            if reg.sessions.contains_key(new_id) {
                return Err(EngineError::SessionInUse(new_id.to_string()));
            }
            reg.sessions.remove(&old_id);
            s.set_id(new_id);
            reg.sessions.insert(new_id.to_string(), s.clone());
            for target in reg.aliases.values_mut() {
                if target == &old_id {
                    *target = new_id.to_string();
                }
            }
            reg.aliases.remove(new_id);
            reg.aliases.insert(old_id.clone(), new_id.to_string());
        }
        s.send_to_owner(Frame::Rename {
            old_id: old_id.clone(),
            new_id: new_id.to_string(),
        });
        super::holders::save_holder_meta(&s);
        self.shared.emit(Event::SessionRename(ev::SessionRename {
            sender: ev::DAEMON.into(),
            old_id: old_id.clone(),
            new_id: new_id.to_string(),
            timestamp: now_iso(),
        }));
        self.shared.request_persist();
        Ok((old_id, new_id.to_string()))
    }

    /// `DELETE /api/sessions/:id`: "closing" (or "force-removed").
    pub fn delete(&self, requested: &str) -> Result<&'static str, EngineError> {
        EngineError::check_id(requested)?;
        let s = {
            let mut reg = self.shared.registry_mut();
            reg.closing
                .retain(|_, t| t.elapsed() < Duration::from_secs(5));
            let Some(s) = reg.resolve(requested) else {
                if reg.closing.contains_key(requested) {
                    return Ok("closing");
                }
                return Err(EngineError::not_found(requested));
            };
            let id = s.id();
            reg.sessions.remove(&id);
            reg.aliases.retain(|_, t| t != &id);
            reg.closing.insert(id, Instant::now());
            s
        };
        s.meta().closing = true;
        s.queue.close();
        match s.kind {
            Kind::Spawned => {
                s.close_all(1000, "Session exited");
                // The holder hangs up the child's whole session (background jobs in their own
                // process groups too), SIGKILLs what is left after 2 s, and exits.
                if let Some(p) = &s.pty {
                    p.kill(2000);
                }
            }
            Kind::Wrapped | Kind::Aterm => s.close_all(1000, "Session destroyed"),
        }
        self.shared.request_persist();
        Ok("closing")
    }

    /// Pre-flight health check of API.md §6.1 step 3.
    /// A wrapped session whose owner is away (its bridge reconnecting after a blip or a daemon
    /// restart): wait for it, at most [`super::session::OWNER_RECONNECT_WAIT`], so an inject in that second
    /// is typed instead of refused. Returns at once for every other session.
    pub async fn await_owner(&self, requested: &str) {
        let Ok(s) = self.resolve(requested) else {
            return;
        };
        if s.kind != Kind::Wrapped
            || s.has_owner()
            || s.health(self.shared.settings.stale_secs).status == "STALE"
        {
            return;
        }
        s.owner_within(super::session::OWNER_RECONNECT_WAIT).await;
    }

    fn preflight(&self, s: &Session) -> Result<(), EngineError> {
        let h = s.health(self.shared.settings.stale_secs);
        match h.status {
            "STALE" => Err(EngineError::Stale),
            "DISCONNECTED" => Err(EngineError::disconnected(match s.kind {
                Kind::Spawned => "PTY process is not connected.",
                Kind::Wrapped => "Session owner is disconnected.",
                Kind::Aterm => {
                    if s.meta().delivery_endpoint.is_some() {
                        "UDS endpoint is unreachable."
                    } else {
                        "Delivery endpoint is missing."
                    }
                }
            })),
            _ => Ok(()),
        }
    }

    fn enqueue(
        &self,
        s: &Arc<Session>,
        mut msg: Message,
    ) -> Result<oneshot::Receiver<Result<Delivered, EngineError>>, EngineError> {
        let (tx, rx) = oneshot::channel();
        msg.done = Some(tx);
        s.queue.push(&s.id(), msg)?;
        if s.kind == Kind::Aterm {
            tasks::schedule_wake(s);
        }
        Ok(rx)
    }

    fn emit_preflight_failure(&self, s: &Session, e: &EngineError, who: &Who<'_>) {
        self.shared.emit_envelope(
            Some(s),
            ev::InjectFailed {
                target_agent: s.id(),
                code: e.code().into(),
                error: e.to_string(),
                phase: None,
                source: who.source.as_str().into(),
                inject_id: Some(who.inject_id.to_string()),
                origin: ev::FailedOrigin::Sender {
                    from: who.from.clone(),
                    reply_to: who.reply_to.clone(),
                },
            },
        );
    }

    /// `POST /api/sessions/:id/inject`
    pub fn inject(
        &self,
        requested: &str,
        req: InjectRequest,
    ) -> Result<InjectOutcome, EngineError> {
        let s = self.resolve(requested)?;
        let id = s.id();
        if let Some(key) = &req.inject_id {
            if let Some(out) = self.shared.recent_injects.lookup(key, &id)? {
                return Ok(out);
            }
        }
        let inject_id = req
            .inject_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let reply_to = req.reply_to.clone().or_else(|| req.from.clone());
        let who = Who {
            inject_id: &inject_id,
            from: &req.from,
            reply_to: &reply_to,
            source: Source::Inject,
        };
        let mut msg = Message::new(
            req.prompt.clone(),
            !req.no_enter,
            Source::Inject,
            req.from.clone(),
        );
        msg.inject_id = Some(inject_id.clone());
        msg.reply_to = reply_to.clone();
        let done = self
            .preflight(&s)
            .and_then(|()| self.enqueue(&s, msg))
            .inspect_err(|e| self.emit_preflight_failure(&s, e, &who))?;
        {
            let mut m = s.meta();
            m.last_inject_from = req.from.clone();
            m.last_inject_reply_to = reply_to.clone();
            if req.thread_id.is_some() {
                m.last_thread_id = req.thread_id.clone();
            }
            if let Some(from) = &req.from {
                m.pending_report = Some(PendingReport {
                    source: from.clone(),
                    injected_at: SystemTime::now(),
                    inject_id: inject_id.clone(),
                });
            }
        }
        self.shared.emit_envelope(
            Some(&s),
            ev::InjectWritten {
                inject_id: inject_id.clone(),
                target_agent: id.clone(),
                detail: ev::InjectWrittenDetail::Inject(ev::Injected {
                    content: Some(ev::bounded_content(&req.prompt)),
                    from: req.from.clone(),
                    reply_to: reply_to.clone(),
                    thread_id: req.thread_id.clone(),
                    reply_expected: req.reply_expected,
                }),
            },
        );
        if let Some(from) = &req.from {
            self.shared.emit(Event::MessageRouted(ev::MessageRouted {
                message_id: inject_id.clone(),
                from: from.clone(),
                to: id.clone(),
                reply_to: reply_to.clone(),
                inject_id: inject_id.clone(),
                deliberation_session_id: req.deliberation_session_id.clone(),
                thread_id: req.thread_id.clone(),
                timestamp: now_iso(),
            }));
        }
        s.send_to_viewers(Frame::InjectNotification {
            inject_id: inject_id.clone(),
            session_id: id.clone(),
            from: req.from.clone(),
            content: ev::bounded_content(&req.prompt),
            timestamp: now_iso(),
        });
        let submit = if req.no_enter { "skipped" } else { "deferred" };
        let done = match &req.inject_id {
            Some(key) => self.shared.recent_injects.remember(key, &id, submit, done),
            None => done,
        };
        Ok(InjectOutcome {
            inject_id,
            session_id: id,
            submit,
            duplicate: false,
            done,
        })
    }

    /// Queue text + Enter to one session without the HTTP inject bookkeeping (multicast,
    /// broadcast, bus routes, auto-reports, the dashboard).
    pub fn deliver(
        &self,
        s: &Arc<Session>,
        text: &str,
        enter: bool,
        source: Source,
    ) -> Result<oneshot::Receiver<Result<Delivered, EngineError>>, EngineError> {
        if let Err(e) = self.preflight(s) {
            if source != Source::Submit {
                self.emit_preflight_failure(
                    s,
                    &e,
                    &Who {
                        inject_id: "",
                        from: &None,
                        reply_to: &None,
                        source,
                    },
                );
            }
            return Err(e);
        }
        self.enqueue(s, Message::new(text.to_string(), enter, source, None))
    }

    fn fan_out(
        &self,
        targets: Vec<(String, Result<Arc<Session>, EngineError>)>,
        prompt: &str,
        source: Source,
    ) -> Vec<TargetResult> {
        let deliver = |s: Arc<Session>| self.deliver(&s, prompt, true, source);
        targets
            .into_iter()
            .map(|(id, s)| match s.and_then(deliver) {
                Ok(_) => TargetResult::Ok(id),
                Err(e) => TargetResult::Failed {
                    id,
                    code: e.code(),
                    error: e.to_string(),
                },
            })
            .collect()
    }

    /// `POST /api/sessions/multicast/inject` (exact ids, in order).
    pub fn multicast(&self, ids: &[String], prompt: &str) -> Vec<TargetResult> {
        let exact = |id: &String| self.get_exact(id).ok_or_else(|| EngineError::not_found(id));
        let targets = ids
            .iter()
            .map(|id| {
                (
                    id.clone(),
                    EngineError::check_id(id).and_then(|()| exact(id)),
                )
            })
            .collect();
        let results = self.fan_out(targets, prompt, Source::Multicast);
        for r in &results {
            if let TargetResult::Ok(id) = r {
                self.shared.emit(Event::Injection(ev::Injection {
                    sender: "cli".into(),
                    target_agent: id.clone(),
                    content: ev::bounded_content(prompt),
                    session_ids: None,
                    timestamp: now_iso(),
                }));
            }
        }
        results
    }

    /// `POST /api/sessions/broadcast/inject` (every session, disconnected ones fail).
    pub fn broadcast(&self, prompt: &str) -> Vec<TargetResult> {
        let targets = self
            .sessions()
            .into_iter()
            .map(|s| (s.id(), Ok(s)))
            .collect();
        let results = self.fan_out(targets, prompt, Source::Broadcast);
        let ok: Vec<TargetOk> = results
            .iter()
            .filter_map(|r| match r {
                TargetResult::Ok(id) => Some(TargetOk {
                    id: id.clone(),
                    strategy: "mailbox".into(),
                }),
                _ => None,
            })
            .collect();
        if !ok.is_empty() {
            self.shared.emit(Event::Injection(ev::Injection {
                sender: "cli".into(),
                target_agent: "all".into(),
                content: ev::bounded_content(prompt),
                session_ids: Some(ok),
                timestamp: now_iso(),
            }));
        }
        results
    }

    /// `POST /api/sessions/:id/submit`: Ok(attempts) or Err((error, attempts)).
    pub async fn submit(
        &self,
        requested: &str,
        retries: u32,
        retry_delay: Duration,
        pre_delay: Duration,
    ) -> Result<u32, (EngineError, u32)> {
        let s = self.resolve(requested).map_err(|e| (e, 0))?;
        if s.kind == Kind::Aterm {
            return Err((
                EngineError::Unsupported("aterm sessions have no terminal to submit to.".into()),
                0,
            ));
        }
        tokio::time::sleep(pre_delay).await;
        let mut attempts = 0;
        for i in 0..=retries {
            if i > 0 {
                tokio::time::sleep(retry_delay).await;
            }
            attempts += 1;
            let rx = self
                .deliver(&s, "", true, Source::Submit)
                .map_err(|e| (e, attempts))?;
            let closing = |_| Err(EngineError::disconnected("Session is closing."));
            rx.await
                .unwrap_or_else(closing)
                .map_err(|e| (e, attempts))?;
        }
        self.shared.emit(Event::Submit(ev::Submit {
            sender: ev::DAEMON.into(),
            session_id: s.id(),
            strategy: "pty_cr".into(),
            attempts,
            timestamp: now_iso(),
        }));
        Ok(attempts)
    }

    /// `POST /api/sessions/submit-all`
    pub fn submit_all(&self) -> Vec<TargetResult> {
        self.sessions()
            .into_iter()
            .map(|s| {
                let id = s.id();
                let failed = if s.kind == Kind::Aterm {
                    Some("UNSUPPORTED_SESSION_TYPE")
                } else {
                    let queued = self.deliver(&s, "", true, Source::Submit);
                    queued.err().map(|e| e.code())
                };
                match failed {
                    None => TargetResult::Ok(id),
                    Some(code) => TargetResult::Failed {
                        id,
                        code,
                        error: "Submit failed".into(),
                    },
                }
            })
            .collect()
    }

    /// `POST /api/sessions/:id/keys`: queued in order as one raw message.
    pub fn keys(&self, requested: &str, names: &[String]) -> Result<(String, usize), EngineError> {
        let s = self.resolve(requested)?;
        if s.kind == Kind::Aterm {
            return Err(EngineError::Unsupported(
                "aterm sessions have no terminal to send keys to.".into(),
            ));
        }
        if names.is_empty() || names.len() > 64 {
            return Err(EngineError::InvalidRequest(
                "keys must be an array of 1-64 key names".into(),
            ));
        }
        let app_cursor = s.term.application_cursor();
        let mut bytes = Vec::new();
        for n in names {
            bytes.extend(
                keys::key_bytes(n, app_cursor).ok_or_else(|| EngineError::UnknownKey(n.clone()))?,
            );
        }
        self.preflight(&s)?;
        let mut msg = Message::new(
            String::from_utf8_lossy(&bytes).into_owned(),
            false,
            Source::Keys,
            None,
        );
        msg.raw = true;
        self.enqueue(&s, msg)?;
        Ok((s.id(), names.len()))
    }

    /// `POST /api/sessions/:id/resize`
    pub fn resize(&self, requested: &str, cols: u16, rows: u16) -> Result<String, EngineError> {
        let s = self.resolve(requested)?;
        self.resize_session(&s, cols, rows)?;
        Ok(s.id())
    }

    /// An explicit size (API, CLI): a spawned session's own size. The PTY gets it now unless
    /// viewers decide the size (see `sizing.rs`), else when the last viewer leaves.
    pub fn resize_session(&self, s: &Session, cols: u16, rows: u16) -> Result<(), EngineError> {
        match s.kind {
            Kind::Spawned => {
                let mut sz = s.sizing();
                sz.own = (cols, rows);
                self.apply_size(s, &mut sz);
                drop(sz);
                // The next engine adopting the session restores this size.
                super::holders::save_holder_meta(s);
                Ok(())
            }
            Kind::Wrapped => {
                s.send_to_owner(Frame::Resize { cols, rows });
                Ok(())
            }
            Kind::Aterm => Err(EngineError::Unsupported(
                "aterm sessions have no terminal to resize.".into(),
            )),
        }
    }

    /// A viewer (attached socket, dashboard pane) shows the session in `cols`x`rows`. For a
    /// spawned session it counts toward the size by the `window_size` policy; for a wrapped
    /// one it is forwarded to the owner, who decides (API.md §11.2).
    pub fn viewer_resize(&self, s: &Session, viewer: u64, cols: u16, rows: u16) {
        match s.kind {
            Kind::Spawned => {
                let mut sz = s.sizing();
                sz.set_viewer(viewer, cols, rows);
                self.apply_size(s, &mut sz);
            }
            Kind::Wrapped => {
                s.send_to_owner(Frame::Resize { cols, rows });
            }
            Kind::Aterm => {}
        }
    }

    /// The viewer stops counting (closed, hidden pane, dashboard quit). The last one leaving
    /// brings the session back to its own size.
    pub fn viewer_leave(&self, s: &Session, viewer: u64) {
        if s.kind != Kind::Spawned {
            return;
        }
        let mut sz = s.sizing();
        if sz.remove_viewer(viewer) {
            self.apply_size(s, &mut sz);
        }
    }

    /// The per-session `window_size` override (`None`: the configured default).
    pub fn set_window_size(
        &self,
        s: &Session,
        policy: Option<super::WindowSize>,
    ) -> Result<(), EngineError> {
        if s.kind != Kind::Spawned {
            return Err(EngineError::Unsupported(
                "window_size applies to spawned sessions only.".into(),
            ));
        }
        let mut sz = s.sizing();
        sz.policy = policy;
        self.apply_size(s, &mut sz);
        drop(sz);
        super::holders::save_holder_meta(s);
        Ok(())
    }

    /// Give the PTY and the emulator the size the policy picks, if it changed. Called with the
    /// sizing lock held, so concurrent changes reach the PTY in the order they were decided.
    fn apply_size(&self, s: &Session, sz: &mut super::sizing::Sizing) {
        let (cols, rows) = sz.effective(self.shared.settings.window_size);
        if (cols, rows) == sz.applied {
            return;
        }
        if let Some(p) = &s.pty {
            let _ = p.resize(rows, cols);
        }
        s.term.resize(rows, cols);
        s.classifier.lock().note_resize(tasks::mono_ms());
        sz.applied = (cols, rows);
        self.shared.bump();
    }

    /// `GET /api/sessions[/:id]` → `sizing` (spawned sessions).
    pub(crate) fn sizing_view(&self, s: &Session) -> wire::session::Sizing {
        let sz = s.sizing();
        wire::session::Sizing {
            window_size: sz
                .policy_or(self.shared.settings.window_size)
                .as_str()
                .into(),
            policy_override: sz.policy.map(|p| p.as_str().into()),
            cols: sz.own.0,
            rows: sz.own.1,
            viewers: sz
                .viewers
                .iter()
                .map(|v| wire::session::ViewerSize {
                    cols: v.cols,
                    rows: v.rows,
                })
                .collect(),
        }
    }

    /// `GET /api/sessions/:id/state`
    pub fn state(&self, requested: &str) -> Result<StateView, EngineError> {
        let s = self.resolve(requested)?;
        let auto = s.classifier.lock().view(tasks::mono_ms());
        let m = s.meta();
        Ok(StateView {
            session_id: s.id(),
            auto,
            self_report: m.semantic.clone(),
            last_state_report_at: m.last_state_report_at.map(crate::util::iso),
        })
    }

    /// Apply a self-report (HTTP state route or bus `session_state_report`); returns the
    /// session and the normalized event.
    pub fn self_report(
        &self,
        requested: &str,
        body: &Value,
    ) -> Result<(Arc<Session>, Event), EngineError> {
        let s = self.resolve(requested)?;
        let Value::Object(b) = body else {
            return Err(EngineError::InvalidRequest(
                "state report payload must be a JSON object".into(),
            ));
        };
        let text = |k: &str| -> Option<String> {
            b.get(k)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .map(str::to_string)
        };
        let phase = text("phase")
            .or_else(|| text("task_phase"))
            .ok_or_else(|| EngineError::InvalidRequest("phase is required".into()))?;
        let bad_seq = || EngineError::InvalidRequest("seq must be a non-negative integer".into());
        let seq = b.get("seq").filter(|v| !v.is_null());
        let seq = seq.map(|v| v.as_u64().ok_or_else(bad_seq)).transpose()?;
        let needs_input = body.flag("needs_input");
        let needs_input = needs_input.map_err(|e| EngineError::InvalidRequest(e.to_string()))?;
        let now = SystemTime::now();
        {
            let mut m = s.meta();
            let prev_seq = m
                .semantic
                .as_ref()
                .and_then(|x| x.get("seq"))
                .and_then(Value::as_u64);
            // API.md §5: default previous + 1, the previous of a first report being 0.
            let seq = seq.unwrap_or_else(|| prev_seq.unwrap_or(0) + 1);
            let thread_id = text("thread_id");
            let sem = wire::session::Semantic {
                phase,
                current_task: text("current_task").or_else(|| text("task")),
                blocker: text("blocker"),
                needs_input,
                thread_id: thread_id.clone(),
                source: text("source").unwrap_or_else(|| "self_report".into()),
                seq: Some(seq),
            };
            if thread_id.is_some() {
                m.last_thread_id = thread_id;
            }
            m.semantic = serde_json::to_value(sem).ok();
            m.last_state_report_at = Some(now);
        }
        let mut envelope = self.shared.envelope(Some(&s), None);
        envelope.timestamp = crate::util::iso(now);
        self.shared.request_persist();
        Ok((s, Event::envelope(envelope, ev::SessionStateReport {})))
    }

    /// Auto-routing of bus messages (API.md §9). Returns nothing; results go on the bus.
    pub fn auto_route(&self, msg: &Value) {
        let text = |k: &str| msg.get(k).and_then(Value::as_str);
        let kind = text("type").or_else(|| text("kind"));
        if !matches!(kind, Some("turn_request") | Some("deliberation_route_turn")) {
            return;
        }
        let Some(target) = text("target").or_else(|| text("target_session_id")) else {
            return;
        };
        let stripped = match target.rfind('@') {
            Some(i) if i > 0 && i + 1 < target.len() => &target[..i],
            _ => target,
        };
        let payload = msg.get("payload");
        let text = payload
            .and_then(|p| p.get("prompt"))
            .and_then(Value::as_str)
            .or_else(|| text("content"))
            .or_else(|| text("prompt"))
            .map_or_else(|| msg.to_string(), str::to_string);
        let turn_id = payload
            .and_then(|p| p.get("turn_id"))
            .cloned()
            .unwrap_or(Value::Null);
        let message_id = msg.get("message_id").cloned().unwrap_or(Value::Null);
        let source_host = msg.get("source_host").cloned().unwrap_or(Value::Null);
        let inject_id = uuid::Uuid::new_v4().to_string();
        let session = valid_session_id(stripped)
            .then(|| self.shared.registry().resolve(stripped))
            .flatten();
        let route_failed = |target: &str, code: &str, error: String| ev::InjectFailed {
            target_agent: target.to_string(),
            code: code.to_string(),
            error,
            phase: None,
            source: "bus_auto_route".into(),
            inject_id: Some(inject_id.clone()),
            origin: ev::FailedOrigin::Route {
                turn_id: turn_id.clone(),
                original_message_id: message_id.clone(),
            },
        };
        let Some(s) = session else {
            let failed = route_failed(
                stripped,
                "SESSION_NOT_FOUND",
                "Target session was not found.".into(),
            );
            let envelope = self.shared.envelope(None, Some(stripped));
            self.shared.emit(Event::envelope(envelope, failed));
            return;
        };
        let id = s.id();
        let res = self.preflight(&s).and_then(|_| {
            let mut m = Message::new(text, true, Source::BusAutoRoute, None);
            m.inject_id = Some(inject_id.clone());
            s.queue.push(&id, m)
        });
        self.shared.emit_envelope(
            Some(&s),
            ev::InjectWritten {
                inject_id: inject_id.clone(),
                target_agent: id.clone(),
                detail: ev::InjectWrittenDetail::Route {
                    source_host,
                    source_type: "bus_auto_route".into(),
                    turn_id: turn_id.clone(),
                    original_message_id: message_id.clone(),
                    delivered: res.is_ok(),
                    code: res.as_ref().err().map(|e| e.code().to_string()),
                    error: res.as_ref().err().map(EngineError::to_string),
                },
            },
        );
        if let Err(e) = res {
            let failed = route_failed(&id, e.code(), e.to_string());
            self.shared.emit_envelope(Some(&s), failed);
        } else if s.kind == Kind::Aterm {
            tasks::schedule_wake(&s);
        }
    }

    /// Publish a client message on the bus: state reports are applied (and only the
    /// normalized event goes out), everything else is sent verbatim and auto-routed.
    pub fn publish(&self, origin: Option<u64>, msg: Value) -> Result<Option<Event>, EngineError> {
        if msg.get("type").and_then(Value::as_str) == Some("session_state_report") {
            let id = msg.get("session_id").and_then(Value::as_str).unwrap_or("");
            if id.is_empty() {
                return Err(EngineError::not_found(""));
            }
            let (_, ev) = self.self_report(id, &msg)?;
            self.shared.emit(ev.clone());
            return Ok(Some(ev));
        }
        self.shared.bus.send(origin, msg.clone());
        self.auto_route(&msg);
        Ok(None)
    }

    // ---- WebSocket attachment -------------------------------------------------------

    /// Attach a socket to a session (exact id), auto-creating a wrapped session for an
    /// unknown id. Returns the session, this connection's id, whether it is the owner, and
    /// the frames the engine will send it.
    pub fn attach(
        &self,
        id: &str,
        want_owner: bool,
    ) -> Result<(Arc<Session>, u64, bool, ClientRx), EngineError> {
        EngineError::check_id(id)?;
        let s = match self.get_exact(id) {
            Some(s) => s,
            None => {
                let now = SystemTime::now();
                let meta = Meta {
                    command: "wrapped".into(),
                    cwd: self.shared.settings.daemon_cwd.display().to_string(),
                    backend: "pty".into(),
                    created_at: Some(now),
                    last_activity_at: Some(now),
                    last_disconnected_at: Some(now),
                    ..Default::default()
                };
                let s = self.new_session(Kind::Wrapped, id.to_string(), meta, 80, 30);
                let mut reg = self.shared.registry_mut();
                let s = reg.sessions.entry(id.to_string()).or_insert(s).clone();
                drop(reg);
                self.start_delivery(&s);
                self.shared.request_persist();
                s
            }
        };
        let conn_id = self.shared.next_conn_id();
        let (tx, rx) = client_channel();
        let owner = s.kind == Kind::Wrapped && (want_owner || !s.has_owner());
        if owner && let Some(prev) = s.take_owner() {
            prev.close(4001, "Owner replaced");
        }
        s.add_client(Client { conn_id, owner, tx });
        if owner {
            let reconnect = {
                let mut m = s.meta();
                let was_disconnected =
                    m.last_connected_at.is_some() && m.last_disconnected_at.is_some();
                m.last_connected_at = Some(SystemTime::now());
                m.stale_announced = false;
                was_disconnected
            };
            if reconnect {
                let h = s.health(self.shared.settings.stale_secs);
                self.shared
                    .emit_envelope(Some(&s), ev::SessionReconnect { health: h.fields() });
            }
            self.shared.request_persist();
        } else {
            self.shared.bump();
        }
        Ok((s, conn_id, owner, rx))
    }

    pub fn detach(&self, s: &Arc<Session>, conn_id: u64) {
        self.viewer_leave(s, conn_id);
        let Some(was_owner) = s.remove_client(conn_id) else {
            return;
        };
        if was_owner && s.kind == Kind::Wrapped && !s.has_owner() {
            {
                let mut m = s.meta();
                m.ready = false;
                m.last_disconnected_at = Some(SystemTime::now());
            }
            let h = s.health(self.shared.settings.stale_secs);
            let clients = s.client_count();
            self.shared.emit_envelope(
                Some(s),
                ev::SessionDisconnect {
                    health: h.fields(),
                    clients,
                },
            );
            if self.get_exact(&s.id()).is_some() {
                self.shared.request_persist();
            }
        }
        self.shared.bump();
    }

    /// A viewer typed `data` (an `input` frame, or a dashboard pane): to the PTY of a spawned
    /// session, to the owner of a wrapped one (`raw`: no Enter handling). Not for aterm.
    pub fn viewer_input(&self, s: &Arc<Session>, data: &str) {
        let record = || {
            if let Some(r) = s.term.recorder() {
                r.input(data, None);
            }
        };
        match (s.kind, &s.pty) {
            (Kind::Spawned, Some(p)) => {
                record();
                p.write_now(data.as_bytes().to_vec());
            }
            (Kind::Wrapped, _) => {
                record();
                s.send_to_owner(Frame::Inject {
                    data: data.to_string(),
                    raw: true,
                    enter: false,
                });
            }
            _ => {}
        }
    }

    /// A frame from an attached socket (API.md §11.2 table); `conn_id` identifies the viewer
    /// whose size a `resize` registers.
    pub fn client_frame(&self, s: &Arc<Session>, conn_id: u64, is_owner: bool, frame: &Value) {
        let ty = frame.get("type").and_then(Value::as_str).unwrap_or("");
        let dim = |k: &str| {
            let n = frame.get(k).and_then(Value::as_u64)?;
            (1..=1000).contains(&n).then_some(n as u16)
        };
        let dims = || Some((dim("cols")?, dim("rows")?));
        match (s.kind, is_owner, ty) {
            (Kind::Spawned, _, "input") | (Kind::Wrapped, false, "input") => {
                if let Some(d) = frame.get("data").and_then(Value::as_str) {
                    self.viewer_input(s, d);
                }
            }
            (Kind::Spawned, _, "resize") => {
                if let Some((c, r)) = dims() {
                    self.viewer_resize(s, conn_id, c, r);
                }
            }
            (Kind::Spawned, _, "release_size") => self.viewer_leave(s, conn_id),
            (Kind::Wrapped, false, "resize") => {
                s.send_to_owner(frame.clone());
            }
            (Kind::Wrapped, true, "output") => {
                if let Some(d) = frame.get("data").and_then(Value::as_str) {
                    s.term.feed(d.as_bytes());
                    s.meta().last_activity_at = Some(SystemTime::now());
                }
            }
            (Kind::Wrapped, true, "ready") => {
                {
                    let mut m = s.meta();
                    m.ready = true;
                    m.last_activity_at = Some(SystemTime::now());
                }
                self.shared.emit(Event::SessionReady(ev::SessionReady {
                    session_id: s.id(),
                    timestamp: now_iso(),
                }));
                tasks::fire_auto_report(self, s);
                self.shared.bump();
            }
            (Kind::Wrapped, true, "resize") => {
                if let Some((c, r)) = dims() {
                    s.term.resize(r, c);
                }
            }
            (Kind::Wrapped, true, "session_died") => {
                // API.md: a name or null; anything else is passed on as its JSON text.
                let signal = frame.get("signal").filter(|v| !v.is_null());
                let signal =
                    signal.map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string));
                self.shared.emit_envelope(
                    Some(s),
                    ev::SessionExit {
                        exit_code: frame.get("exitCode").and_then(Value::as_i64),
                        signal,
                    },
                );
            }
            _ => {}
        }
    }
}

/// The id with a trailing `-<digits>` removed (register's replace detection).
fn base_alias(id: &str) -> &str {
    if let Some(i) = id.rfind('-') {
        let tail = &id[i + 1..];
        if i > 0 && !tail.is_empty() && tail.bytes().all(|b| b.is_ascii_digit()) {
            return &id[..i];
        }
    }
    id
}

/// The allowlisted variables of a new child's environment: the value given for the spawn,
/// else the daemon's own (which the child inherits).
pub(crate) fn captured_env(allow: &[String], given: &[(String, String)]) -> Vec<(String, String)> {
    let value = |k: &String| Some((k.clone(), child_var(given, k)?));
    allow.iter().filter_map(value).collect()
}

/// A variable of a new child's environment: the last value given for the spawn, else the
/// daemon's own.
fn child_var(given: &[(String, String)], name: &str) -> Option<String> {
    let last = given.iter().rev().find(|(n, _)| n == name);
    last.map(|(_, v)| v.clone())
        .or_else(|| std::env::var(name).ok())
}

/// The caller's mistakes, found before anything is forked: a working directory that is not
/// there, a program that is neither on `path` nor an executable file (API.md's SPAWN_FAILED,
/// as a 400: a typo is not the server's failure).
fn check_spawnable(command: &str, cwd: &str, path: Option<&str>) -> Result<(), EngineError> {
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;
    if !Path::new(cwd).is_dir() {
        return Err(EngineError::NotSpawnable(format!(
            "Working directory not found: {cwd}"
        )));
    }
    let runnable = |p: &Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    let found = if command.contains('/') {
        runnable(&Path::new(cwd).join(command))
    } else {
        !command.is_empty()
            && path
                .unwrap_or_default()
                .split(':')
                .filter(|d| !d.is_empty())
                .any(|d| runnable(&Path::new(d).join(command)))
    };
    let not_found = || EngineError::NotSpawnable(format!("Command not found: {command}"));
    found.then_some(()).ok_or_else(not_found)
}

#[cfg(test)]
mod tests {
    #[test]
    fn base_alias_strips_numeric_suffix() {
        assert_eq!(super::base_alias("proj-claude-2"), "proj-claude");
        assert_eq!(super::base_alias("proj-claude"), "proj-claude");
        assert_eq!(super::base_alias("x-"), "x-");
        assert_eq!(super::base_alias("-12"), "-12");
    }
}
