//! Lost sessions and their resurrection (issue 10, item 7).
//!
//! A spawned session in `sessions.json` whose id is not live when the engine starts (the
//! machine rebooted, or the daemon and its children were killed) is *lost*. It stays in the
//! file, is listed by `GET /api/sessions/lost`, and `resurrect` starts it again through the
//! normal spawn path: same id, command, arguments, cwd, size and allowlisted environment, with
//! the per-command resume arguments of `[resume]` in config.toml (`claude --continue`, …).

use std::collections::BTreeMap;
use std::path::Path;

use super::Engine;
use super::error::EngineError;
use super::ops::SpawnSpec;
use super::store::SpawnedEntry;
use crate::wire::response::{LostSession, Resurrected};

/// Resume arguments per command name (`[resume]` of config.toml).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResumeConfig {
    pub by_command: BTreeMap<String, Vec<String>>,
}

impl ResumeConfig {
    /// The resume arguments for `command` (matched by its file name, so `/usr/bin/claude` is
    /// `claude`); empty when none are configured.
    pub fn resume_args(&self, command: &str) -> &[String] {
        let name = Path::new(command)
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        self.by_command
            .get(name.as_ref())
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The arguments a resurrection runs with: the resume arguments right after the command
    /// (where a subcommand such as `codex resume --last` must go, and where flags work as
    /// well), then the original arguments. Not added twice when a session that was already
    /// resurrected is resurrected again.
    pub fn args_for(&self, command: &str, args: &[String]) -> Vec<String> {
        let resume = self.resume_args(command);
        if resume.is_empty() || args.starts_with(resume) {
            return args.to_vec();
        }
        resume.iter().chain(args).cloned().collect()
    }
}

/// The answer for one id of a resurrection.
#[derive(Clone, Debug)]
pub enum ResurrectOutcome {
    Started {
        id: String,
        command: String,
        args: Vec<String>,
        cwd: String,
    },
    Forgotten {
        id: String,
    },
    Failed {
        id: String,
        code: &'static str,
        error: String,
    },
}

impl ResurrectOutcome {
    pub fn id(&self) -> &str {
        match self {
            Self::Started { id, .. } | Self::Forgotten { id } | Self::Failed { id, .. } => id,
        }
    }

    pub fn is_ok(&self) -> bool {
        !matches!(self, Self::Failed { .. })
    }

    /// One item of the `results` of `POST /api/sessions/resurrect`.
    pub fn to_wire(&self) -> Resurrected {
        let id = self.id().to_string();
        match self {
            Self::Started {
                command, args, cwd, ..
            } => Resurrected {
                id,
                success: true,
                status: Some("started".into()),
                command: Some(command.clone()),
                args: Some(args.clone()),
                cwd: Some(cwd.clone()),
                ..Default::default()
            },
            Self::Forgotten { .. } => Resurrected {
                id,
                success: true,
                status: Some("forgotten".into()),
                ..Default::default()
            },
            Self::Failed { code, error, .. } => Resurrected {
                id,
                success: false,
                code: Some(code.to_string()),
                error: Some(error.clone()),
                ..Default::default()
            },
        }
    }

    pub fn failed(id: &str, e: EngineError) -> Self {
        Self::Failed {
            id: id.to_string(),
            code: e.code(),
            error: e.to_string(),
        }
    }
}

impl Engine {
    /// Spawned entries of the store that are not live: lost. Called once the live sessions
    /// (adopted ones included) are in the registry; exited entries are dropped.
    pub(crate) fn mark_lost(&self, entries: Vec<SpawnedEntry>) {
        let reg = self.shared.registry();
        let mut lost = self.shared.lost();
        let mut exited = 0;
        for e in entries {
            if reg.sessions.contains_key(&e.id) {
                continue;
            }
            if e.exited {
                exited += 1;
                continue;
            }
            lost.insert(e.id.clone(), e);
        }
        if exited > 0 {
            tracing::info!("{exited} spawned sessions had exited before the restart: not restored");
        }
        if !lost.is_empty() {
            let ids: Vec<&str> = lost.keys().map(String::as_str).collect();
            tracing::warn!(
                "{} sessions lost (a reboot?): {}; `telepty resurrect` restarts them",
                lost.len(),
                ids.join(", ")
            );
        }
    }

    /// The lost sessions, oldest first (ids a live session took since are left out).
    pub fn lost_sessions(&self) -> Vec<SpawnedEntry> {
        let reg = self.shared.registry();
        let lost = self.shared.lost();
        let mut v: Vec<SpawnedEntry> = lost
            .values()
            .filter(|e| !reg.sessions.contains_key(&e.id))
            .cloned()
            .collect();
        v.sort_by_key(|e| e.created_at);
        v
    }

    /// `GET /api/sessions/lost`: each lost session, with what a resurrection would run.
    pub fn lost_views(&self) -> Vec<LostSession> {
        let resume = &self.shared.settings.resume;
        self.lost_sessions()
            .iter()
            .map(|e| LostSession {
                resume_args: resume.resume_args(&e.command).to_vec(),
                resurrect_args: resume.args_for(&e.command, &e.args),
                ..e.view()
            })
            .collect()
    }

    /// Drop a lost session from the store for good.
    pub fn forget_lost(&self, id: &str) -> Result<(), EngineError> {
        EngineError::check_id(id)?;
        if self.shared.lost().remove(id).is_none() {
            return Err(EngineError::not_found(id));
        }
        self.shared.request_persist();
        Ok(())
    }

    /// Start lost sessions again (`ids` empty: all of them), one outcome per id, in order.
    /// Blocking: each one is a spawn (fork/exec).
    pub fn resurrect(&self, ids: &[String]) -> Vec<ResurrectOutcome> {
        let ids: Vec<String> = if ids.is_empty() {
            self.lost_sessions().into_iter().map(|e| e.id).collect()
        } else {
            ids.to_vec()
        };
        ids.iter().map(|id| self.resurrect_one(id)).collect()
    }

    fn resurrect_one(&self, id: &str) -> ResurrectOutcome {
        self.try_resurrect(id)
            .unwrap_or_else(|e| ResurrectOutcome::failed(id, e))
    }

    fn try_resurrect(&self, id: &str) -> Result<ResurrectOutcome, EngineError> {
        EngineError::check_id(id)?;
        let entry = {
            let reg = self.shared.registry();
            let e = self.shared.lost().get(id).cloned();
            let e = e.ok_or_else(|| EngineError::not_found(id))?;
            if reg.sessions.contains_key(id) {
                return Err(EngineError::SessionActive(id.into()));
            }
            e
        };
        if !entry.cwd.is_empty() && !Path::new(&entry.cwd).is_dir() {
            return Err(EngineError::SpawnFailed(format!(
                "cwd does not exist any more: {} (`telepty resurrect --forget {id}` drops it)",
                entry.cwd
            )));
        }
        let args = self
            .shared
            .settings
            .resume
            .args_for(&entry.command, &entry.args);
        let req = SpawnSpec {
            id: id.to_string(),
            command: entry.command.clone(),
            args: args.clone(),
            cwd: (!entry.cwd.is_empty()).then(|| entry.cwd.clone()),
            cols: entry.cols,
            rows: entry.rows,
            prompt_type: "AGENT".into(),
            record: false,
            env: entry.env.clone(),
            profile: None,
        };
        let v = self.spawn(req)?;
        self.shared.lost().remove(id);
        self.shared.request_persist();
        tracing::info!("resurrected {id}: {} {}", entry.command, args.join(" "));
        Ok(ResurrectOutcome::Started {
            id: id.to_string(),
            command: entry.command,
            args,
            cwd: v.cwd,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ResumeConfig {
        ResumeConfig {
            by_command: crate::config::default_resume(),
        }
    }

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn resume_args_go_right_after_the_command_once() {
        let c = cfg();
        assert_eq!(c.args_for("claude", &[]), v(&["--continue"]));
        assert_eq!(
            c.args_for("/usr/local/bin/claude", &v(&["--model", "opus"])),
            v(&["--continue", "--model", "opus"])
        );
        assert_eq!(
            c.args_for("codex", &v(&["-m", "o3"])),
            v(&["resume", "--last", "-m", "o3"])
        );
        assert_eq!(c.args_for("gemini", &[]), v(&["--resume", "latest"]));
        // Resurrected twice: not doubled.
        assert_eq!(
            c.args_for("codex", &v(&["resume", "--last"])),
            v(&["resume", "--last"])
        );
        // Unknown commands run as they were.
        assert_eq!(c.args_for("bash", &v(&["-l"])), v(&["-l"]));
    }

    #[test]
    fn captured_env_takes_only_allowlisted_names() {
        let allow = v(&["LANG", "TELEPTY_TEST_NOT_SET_ANYWHERE"]);
        let given = vec![
            ("LANG".to_string(), "C.UTF-8".to_string()),
            ("SECRET".to_string(), "x".to_string()),
        ];
        assert_eq!(
            crate::engine::ops::captured_env(&allow, &given),
            vec![("LANG".to_string(), "C.UTF-8".to_string())]
        );
    }
}
