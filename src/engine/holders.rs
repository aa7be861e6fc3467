//! The engine's use of session holders: start a session in one, adopt the ones that survived
//! an earlier engine, hand them all back on a clean exit.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Instant, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Notify;

use super::pty::{self, Pty};
use super::session::{ExitInfo, Kind, Meta, Session};
use super::terminal::Terminal;
use super::{Engine, EngineError};
use crate::holder::{self, Attached, HolderError};
use crate::util::{iso, parse_iso, signal_name, valid_session_id};

/// What a holder keeps for the next engine: enough to list the session again. Stored by the
/// holder as an opaque JSON value; unknown or missing fields default, so engines of other
/// versions can still adopt.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct HolderMeta {
    pub id: String,
    pub command: String,
    pub args: Vec<String>,
    pub cwd: String,
    /// The session's own size (not a viewer's).
    pub cols: u16,
    pub rows: u16,
    pub window_size: Option<String>,
    pub created_at: Option<String>,
    pub record: bool,
    pub env: Vec<(String, String)>,
    /// The agent profile named at spawn (`None`: chosen by the command).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

impl HolderMeta {
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// Give the session's holder what the next engine needs to adopt it (its own size, policy,
/// name, …); nothing for a session without a holder.
pub(crate) fn save_holder_meta(s: &Session) {
    let Some(p) = &s.pty else {
        return;
    };
    let (own, policy) = {
        let sz = s.sizing();
        (sz.own, sz.policy.map(|p| p.as_str().to_string()))
    };
    let m = s.meta();
    let meta = HolderMeta {
        id: s.id(),
        command: m.command.clone(),
        args: m.args.clone(),
        cwd: m.cwd.clone(),
        cols: own.0,
        rows: own.1,
        window_size: policy,
        created_at: m.created_at.map(iso),
        record: s.term.recorder().is_some(),
        env: m.env.clone(),
        profile: m.profile.clone(),
    }
    .to_value();
    drop(m);
    p.set_meta(meta);
}

impl Engine {
    /// Drive the session a holder handed over; the exit and the end of output reach the
    /// reaper task through the engine's channel.
    pub(crate) fn attach_holder(
        &self,
        att: Attached,
        term: Arc<Terminal>,
        replay: bool,
    ) -> Result<(Pty, Arc<(AtomicBool, Notify)>), EngineError> {
        let done = Arc::new((AtomicBool::new(false), Notify::new()));
        let pid = att.child_pid;
        let (exits, lost) = (self.shared.exits.clone(), self.shared.exits.clone());
        let done2 = done.clone();
        let hooks = pty::Hooks {
            on_eof: Box::new(move || {
                done2.0.store(true, Ordering::Release);
                done2.1.notify_waiters();
            }),
            on_exit: Box::new(move |st| {
                let _ = exits.send((pid, Some(st)));
            }),
            on_holder_lost: Box::new(move || {
                let _ = lost.send((pid, None));
            }),
        };
        let pty = pty::attach(att, term, replay, hooks).map_err(EngineError::SpawnFailed)?;
        Ok((pty, done))
    }

    /// A spawned session around the PTY a holder handed over: a new one, or one adopted from
    /// an earlier engine (`now`: its last activity and connection).
    pub(super) fn spawned_session(
        &self,
        m: &HolderMeta,
        created: SystemTime,
        now: SystemTime,
        term: Arc<Terminal>,
        pty: Pty,
        done: Arc<(AtomicBool, Notify)>,
    ) -> Arc<Session> {
        let meta = Meta {
            command: m.command.clone(),
            args: m.args.clone(),
            cwd: m.cwd.clone(),
            env: m.env.clone(),
            profile: m.profile.clone(),
            backend: "pty".into(),
            created_at: Some(created),
            last_activity_at: Some(now),
            last_connected_at: Some(now),
            ready: true,
            ..Default::default()
        };
        let profile = self.shared.profile_for(&meta);
        Arc::new(Session::new(
            Kind::Spawned,
            m.id.clone(),
            meta,
            term,
            Some(pty),
            self.shared.new_classifier(),
            done,
            profile,
        ))
    }

    /// Adopt every live holder in the runtime directory (in parallel: a restart with many
    /// sessions must be quick). Stale sockets are removed; sessions another engine holds are
    /// left alone.
    pub(crate) fn adopt_holders(&self) {
        let dir = self.shared.settings.runtime_dir.clone();
        if !dir.exists() {
            return;
        }
        if let Err(e) = holder::client::ensure_runtime_dir(&dir) {
            tracing::error!("not adopting sessions: {e}");
            return;
        }
        let t0 = Instant::now();
        let sockets = holder::client::scan(&dir);
        if sockets.is_empty() {
            return;
        }
        let workers = sockets.len().clamp(1, 8);
        let chunks: Vec<Vec<std::path::PathBuf>> = (0..workers)
            .map(|w| sockets.iter().skip(w).step_by(workers).cloned().collect())
            .collect();
        let adopted: Vec<(Attached, Arc<Terminal>)> = std::thread::scope(|scope| {
            let handles: Vec<_> = chunks
                .into_iter()
                .map(|chunk| {
                    scope.spawn(move || {
                        let mut out = Vec::new();
                        for path in chunk {
                            match holder::client::adopt(&path) {
                                Ok(att) => {
                                    let (rows, cols) =
                                        pty::winsize_of(&att.master).unwrap_or((24, 80));
                                    out.push((att, rows, cols));
                                }
                                Err(HolderError::Stale(p)) => {
                                    tracing::info!("removing stale holder socket {}", p.display());
                                    let _ = std::fs::remove_file(&p);
                                }
                                Err(e) => tracing::warn!("not adopting {}: {e}", path.display()),
                            }
                        }
                        out
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_default())
                .map(|(att, rows, cols)| {
                    let term = Arc::new(Terminal::new(rows, cols, self.scrollback_for(cols)));
                    (att, term)
                })
                .collect()
        });
        let n = adopted.len();
        let adopt = |(att, term)| self.adopt_one(att, term);
        let ok = adopted.into_iter().map(adopt).filter(|&a| a).count();
        tracing::info!(
            "adopted {ok} of {n} live sessions in {} ms",
            t0.elapsed().as_millis()
        );
    }

    fn adopt_one(&self, att: Attached, term: Arc<Terminal>) -> bool {
        let m: HolderMeta = serde_json::from_value(att.meta.clone()).unwrap_or_default();
        let id = m.id.clone();
        if !valid_session_id(&id) {
            tracing::warn!(
                "holder {} has no valid session id; ending it",
                att.socket.display()
            );
            let _ = holder::proto::send(
                std::os::fd::AsRawFd::as_raw_fd(&att.control),
                &holder::proto::ToHolder::Kill { grace_ms: 1000 },
                &[],
            );
            return false;
        }
        if self.get_exact(&id).is_some() {
            tracing::warn!(
                "two holders claim session {id}; leaving {} alone",
                att.socket.display()
            );
            return false;
        }
        let exit = att.exit;
        let record = m.record;
        let (rows, cols) = term.size();
        let pid = att.child_pid;
        // Replay first, then record: the recording continues with new output only.
        let attached = self.attach_holder(att, term.clone(), true);
        let warn = |e: &EngineError| tracing::warn!("cannot drive adopted session {id}: {e}");
        let Ok((pty, done)) = attached.inspect_err(warn) else {
            return false;
        };
        if record {
            self.attach_recorder(&term, &id, true, cols, rows);
        }
        let now = SystemTime::now();
        let created = m.created_at.as_deref().and_then(parse_iso).unwrap_or(now);
        let session = self.spawned_session(&m, created, now, term, pty, done);
        // The session's own size, not whatever viewer of the last engine left on the PTY.
        {
            let mut sz = session.sizing();
            if (1..=1000).contains(&m.cols) && (1..=1000).contains(&m.rows) {
                sz.own = (m.cols, m.rows);
            }
            sz.policy = m.window_size.as_deref().and_then(|p| p.parse().ok());
            let (c, r) = sz.own;
            drop(sz);
            let _ = self.resize_session(&session, c, r);
        }
        self.shared
            .registry_mut()
            .sessions
            .insert(id.clone(), session.clone());
        if let Some(st) = exit {
            // It ended while no engine was attached: report it like a fresh exit.
            session.meta().exit = Some(ExitInfo {
                code: st.code,
                signal: st.signal.map(signal_name),
                at: now,
            });
            let _ = self.shared.exits.send((pid, Some(st)));
        }
        self.start_delivery(&session);
        self.shared.emit_envelope(
            Some(&session),
            crate::wire::event::SessionAdopt {
                pid,
                exit_code: exit.and_then(|e| e.code),
            },
        );
        true
    }

    /// Hand every session back to its holder (a clean exit that leaves the agents running).
    pub fn detach_all(&self) {
        for s in self.sessions() {
            save_holder_meta(&s);
            if let Some(p) = &s.pty {
                p.detach();
            }
        }
    }

    /// End and delete every spawned session (the explicit `--stop-sessions` exit). Returns
    /// the pids of the programs that were still running.
    pub fn kill_all(&self, grace_ms: u64) -> Vec<u32> {
        let mut pids = Vec::new();
        for s in self.sessions() {
            let Some(p) = &s.pty else { continue };
            if !s.exited() {
                pids.push(p.pid);
            }
            if self.delete(&s.id()).is_err() {
                p.kill(grace_ms);
            }
        }
        pids
    }
}

impl From<HolderError> for EngineError {
    fn from(e: HolderError) -> Self {
        EngineError::SpawnFailed(e.to_string())
    }
}
