//! Where telepty keeps its files, and the token file.

use std::path::PathBuf;

use serde_json::Value;

use crate::util;

/// Where telepty keeps its files. Everything hangs off `$HOME` so tests can isolate a run.
#[derive(Clone, Debug)]
pub struct Paths {
    pub home: PathBuf,
}

impl Paths {
    pub fn from_env() -> Self {
        let home = env_path("HOME").unwrap_or_else(|| PathBuf::from("/tmp"));
        Paths { home }
    }
    pub fn telepty_dir(&self) -> PathBuf {
        self.home.join(".telepty")
    }
    pub fn config_json(&self) -> PathBuf {
        self.telepty_dir().join("config.json")
    }
    pub fn daemon_state(&self) -> PathBuf {
        self.telepty_dir().join("daemon-state.json")
    }
    pub fn shared_dir(&self) -> PathBuf {
        self.telepty_dir().join("shared")
    }
    /// Where session holders put their sockets (`TELEPTY_RUNTIME_DIR`, else `~/.telepty/run`):
    /// per HOME, like everything else here, so one user's daemons never adopt another HOME's
    /// sessions.
    pub fn runtime_dir(&self) -> PathBuf {
        env_path("TELEPTY_RUNTIME_DIR").unwrap_or_else(|| self.telepty_dir().join("run"))
    }
    /// The daemon's unix socket for the owner's own tools (0600, in the 0700 runtime
    /// directory). Named by the TCP port: the port tells which daemon a client means, and a
    /// daemon that binds it knows any socket of that name is a dead daemon's.
    pub fn daemon_socket(&self, port: u16) -> PathBuf {
        self.runtime_dir().join(format!("daemon-{port}.sock"))
    }
    pub fn sessions_json(&self) -> PathBuf {
        self.home.join(".config/aigentry-telepty/sessions.json")
    }
    pub fn config_toml(&self) -> PathBuf {
        env_path("TELEPTY_CONFIG").unwrap_or_else(|| {
            let base = env_path("XDG_CONFIG_HOME").unwrap_or_else(|| self.home.join(".config"));
            base.join("telepty/config.toml")
        })
    }
    /// The user's agent profiles (`<name>.toml`), beside config.toml.
    pub fn profiles_dir(&self) -> PathBuf {
        self.config_toml()
            .parent()
            .map_or_else(|| self.home.join(".config/telepty"), |d| d.to_path_buf())
            .join("profiles")
    }
    pub fn log_dir(&self) -> PathBuf {
        let base = env_path("XDG_STATE_HOME").unwrap_or_else(|| self.home.join(".local/state"));
        base.join("telepty")
    }
}

/// A path named by an environment variable (unset or empty: `None`).
fn env_path(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
}

/// `~/.telepty/daemon-state.json`: the daemon that holds the lock and where it listens.
#[derive(Default, serde::Deserialize, serde::Serialize)]
#[serde(default)]
pub struct DaemonState {
    pub pid: u32,
    pub host: String,
    pub port: u16,
    #[serde(rename = "startedAt")]
    pub started_at: String,
    pub version: String,
}

impl DaemonState {
    /// The file as written, or `None` (missing, or not this shape).
    pub fn read(paths: &Paths) -> Option<DaemonState> {
        let text = std::fs::read_to_string(paths.daemon_state()).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// The file, if the daemon it names is alive: where this HOME's daemon really listens,
    /// whatever address it was given.
    pub fn running(paths: &Paths) -> Option<DaemonState> {
        let st = Self::read(paths)?;
        let pid = nix::unistd::Pid::from_raw(i32::try_from(st.pid).ok().filter(|p| *p > 0)?);
        nix::sys::signal::kill(pid, None).ok()?;
        Some(st)
    }
}

/// Ensure `~/.telepty` (0700) exists and return the token from `config.json`, creating the
/// file (0600) when it is missing or unparsable. Unknown keys are preserved.
pub fn load_or_create_token(paths: &Paths) -> std::io::Result<String> {
    use std::os::unix::fs::PermissionsExt;
    let dir = paths.telepty_dir();
    std::fs::create_dir_all(&dir)?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).ok();
    let path = paths.config_json();
    let mut doc = std::fs::read_to_string(&path)
        .ok()
        .and_then(|s| serde_json::from_str::<Value>(&s).ok())
        .filter(Value::is_object)
        .unwrap_or_else(|| Value::Object(Default::default()));
    if let Some(tok) = doc
        .get("authToken")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
    {
        return Ok(tok.to_string());
    }
    let token = uuid::Uuid::new_v4().to_string();
    doc["authToken"] = Value::String(token.clone());
    if doc.get("createdAt").is_none() {
        doc["createdAt"] = Value::String(util::now_iso());
    }
    let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    util::write_atomic(&path, text.as_bytes())?;
    Ok(token)
}

/// Read the token without creating anything (clients only need to read it).
pub fn read_token(paths: &Paths) -> Option<String> {
    let text = std::fs::read_to_string(paths.config_json()).ok()?;
    let doc: Value = serde_json::from_str(&text).ok()?;
    doc.get("authToken")?.as_str().map(str::to_string)
}
