//! The `--ref` context-file protocol (API.md §15): a payload is stored once as
//! `~/.telepty/shared/<sha256 hex>.md` (mode 0600, atomic, never rewritten) and the session
//! receives a one-line pointer to it instead of the text itself.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use crate::config::Paths;
use crate::util;

/// The refusal for an empty payload (exact text).
pub const EMPTY_PAYLOAD: &str = "Shared reference content cannot be empty.";
/// Default lifetime of shared files, in days.
pub const DEFAULT_TTL_DAYS: u64 = 7;

/// A stored payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedRef {
    /// sha256 of the UTF-8 payload, lower-case hex
    pub sha: String,
    /// `~/.telepty/shared/<sha>.md` (the real path)
    pub path: PathBuf,
    /// False when the file already existed (it is never rewritten).
    pub created: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SharedRefError {
    #[error("{}", EMPTY_PAYLOAD)]
    Empty,
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Lower-case hex sha256 of the payload's UTF-8 bytes.
pub fn sha256_hex(payload: &str) -> String {
    format!("{:x}", Sha256::digest(payload.as_bytes()))
}

/// The injected pointer line, with a literal `~`.
pub fn pointer_line(sha: &str) -> String {
    format!(
        "[context-ref] Read ~/.telepty/shared/{sha}.md and use it as the source of truth for this task."
    )
}

/// The prompt to inject: the pointer line, then (file mode) the trimmed message on the next
/// line when it is not empty.
pub fn prompt(sha: &str, message: Option<&str>) -> String {
    let mut p = pointer_line(sha);
    if let Some(m) = message.map(str::trim).filter(|m| !m.is_empty()) {
        p.push('\n');
        p.push_str(m);
    }
    p
}

/// Read a `--ref FILE` payload.
pub fn read_payload(file: &Path) -> Result<String, SharedRefError> {
    let bytes = std::fs::read(file).map_err(|source| SharedRefError::Read {
        path: file.to_path_buf(),
        source,
    })?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Store `payload` (pruning expired files first). Refuses an empty (all-whitespace) payload.
pub fn store(paths: &Paths, payload: &str) -> Result<SharedRef, SharedRefError> {
    // `TELEPTY_SHARED_REF_TTL_DAYS`: `0` disables pruning; unset or invalid: the default.
    let ttl = crate::config::env_u64("TELEPTY_SHARED_REF_TTL_DAYS", DEFAULT_TTL_DAYS, 0);
    store_in(&paths.shared_dir(), payload, ttl, SystemTime::now())
}

/// [`store`] with an explicit directory, TTL and clock.
pub fn store_in(
    dir: &Path,
    payload: &str,
    ttl_days: u64,
    now: SystemTime,
) -> Result<SharedRef, SharedRefError> {
    if payload.trim().is_empty() {
        return Err(SharedRefError::Empty);
    }
    let werr = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SharedRefError::Write { path, source }
    };
    std::fs::create_dir_all(dir).map_err(werr(dir))?;
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    prune(dir, ttl_days, now);
    let sha = sha256_hex(payload);
    let path = dir.join(format!("{sha}.md"));
    if path.exists() {
        return Ok(SharedRef {
            sha,
            path,
            created: false,
        });
    }
    util::write_atomic(&path, payload.as_bytes()).map_err(werr(&path))?;
    Ok(SharedRef {
        sha,
        path,
        created: true,
    })
}

/// Remove `.md` files of `dir` whose mtime is more than `ttl_days` before `now`; `0` keeps
/// everything. Returns how many were removed.
pub fn prune(dir: &Path, ttl_days: u64, now: SystemTime) -> usize {
    if ttl_days == 0 {
        return 0;
    }
    let ttl = Duration::from_secs(ttl_days.saturating_mul(86_400));
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for e in rd.flatten() {
        let p = e.path();
        if p.extension().and_then(|x| x.to_str()) != Some("md") {
            continue;
        }
        let Ok(meta) = e.metadata() else { continue };
        if !meta.is_file() {
            continue;
        }
        let old = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .is_some_and(|age| age > ttl);
        if old && std::fs::remove_file(&p).is_ok() {
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn pointer_and_prompt() {
        let sha = sha256_hex("abc");
        assert_eq!(
            sha,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            pointer_line(&sha),
            format!(
                "[context-ref] Read ~/.telepty/shared/{sha}.md and use it as the source of truth for this task."
            )
        );
        assert_eq!(prompt(&sha, None), pointer_line(&sha));
        assert_eq!(prompt(&sha, Some("  ")), pointer_line(&sha));
        assert_eq!(
            prompt(&sha, Some("  do it \n")),
            format!("{}\ndo it", pointer_line(&sha))
        );
    }

    #[test]
    fn store_writes_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let shared = dir.path().join("shared");
        let now = SystemTime::now();
        assert!(matches!(
            store_in(&shared, " \n", 7, now),
            Err(SharedRefError::Empty)
        ));
        assert_eq!(SharedRefError::Empty.to_string(), EMPTY_PAYLOAD);
        let r = store_in(&shared, "hello ref", 7, now).unwrap();
        assert!(r.created);
        assert_eq!(
            r.path,
            shared.join(format!("{}.md", sha256_hex("hello ref")))
        );
        assert_eq!(std::fs::read_to_string(&r.path).unwrap(), "hello ref");
        let mode = std::fs::metadata(&r.path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = store_in(&shared, "hello ref", 7, now).unwrap();
        assert!(!again.created);
        // No temp files left behind.
        let names: Vec<_> = std::fs::read_dir(&shared).unwrap().flatten().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn prune_by_mtime() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let now = SystemTime::now();
        let old = std::fs::File::create(d.join("old.md")).unwrap();
        old.set_modified(now - Duration::from_secs(8 * 86_400))
            .unwrap();
        let keep_txt = std::fs::File::create(d.join("old.txt")).unwrap();
        keep_txt
            .set_modified(now - Duration::from_secs(8 * 86_400))
            .unwrap();
        std::fs::write(d.join("new.md"), "x").unwrap();
        assert_eq!(prune(d, 0, now), 0, "0 disables pruning");
        assert!(d.join("old.md").exists());
        assert_eq!(prune(d, 7, now), 1);
        assert!(!d.join("old.md").exists());
        assert!(d.join("old.txt").exists());
        assert!(d.join("new.md").exists());
    }
}
