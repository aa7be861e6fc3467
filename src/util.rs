//! Small shared helpers: timestamps, id validation, durable atomic file writes.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;

/// ISO-8601 UTC with milliseconds, the only timestamp format on the wire.
pub fn iso(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

pub fn now_iso() -> String {
    iso(SystemTime::now())
}

pub fn parse_iso(s: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(s).ok()
}

pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64
}

pub fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

/// Whole seconds elapsed since `t` (0 if `t` is in the future).
pub fn secs_since(t: SystemTime) -> u64 {
    SystemTime::now()
        .duration_since(t)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

/// An environment variable, trimmed; `None` when unset or blank.
pub fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

pub const INVALID_ID_MESSAGE: &str =
    "Invalid session id: use 1-128 characters from A-Z a-z 0-9 . _ -";

/// Session ids end up in paths, shell strings and `id@host` addresses, so the charset is strict.
pub fn valid_session_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id != "."
        && !id.contains("..")
        && id != "multicast"
        && id != "broadcast"
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Write `data` to `path` durably: a temp file of its own in the same directory (never shared
/// with another writer, even in this process), `fsync` of the file, `rename` over `path`, then
/// `fsync` of the directory so the rename itself survives a crash. Readers see the old file or
/// the new one, never a torn or missing one. Mode 0600. On failure the temp file is removed.
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "path has no file name")
    })?;
    std::fs::create_dir_all(dir)?;
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    let tmp = dir.join(format!(
        ".{}{}{}.{}.{nanos}",
        name.to_string_lossy(),
        TEMP_MARK,
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed),
    ));
    let result = (|| {
        // create_new: a leftover of a crashed writer with the same name is never reused.
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// What [`write_atomic`] puts between the target's name and the writer's pid in a temp name.
pub const TEMP_MARK: &str = ".tmp.";

/// Remove temp files [`write_atomic`] left next to `path` (a writer killed mid-write). Only
/// call this while holding whatever makes this process the file's only writer.
pub fn remove_stale_temps(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let prefix = format!(".{}{TEMP_MARK}", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Signal number to its conventional name ("SIGTERM"), as the API reports `exitSignal`.
pub fn signal_name(sig: i32) -> String {
    Signal::try_from(sig).map_or_else(|_| format!("SIG{sig}"), |s| s.as_str().to_string())
}

/// Whether a process with this pid exists (and may be signalled by us): kill(pid, 0).
pub fn pid_alive(pid: u32) -> bool {
    i32::try_from(pid).is_ok_and(|p| p > 0 && signal::kill(Pid::from_raw(p), None).is_ok())
}

pub fn hostname() -> String {
    nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "localhost".into())
}

/// How many trailing bytes of `bytes` are the start of a character still missing bytes.
pub fn incomplete_utf8_tail(bytes: &[u8]) -> usize {
    // An incomplete sequence can only be the last 1-3 bytes.
    for back in 1..=3.min(bytes.len()) {
        let b = bytes[bytes.len() - back];
        if b & 0xC0 == 0x80 {
            continue; // continuation byte, keep looking for the lead byte
        }
        let need = match b {
            0xF0.. => 4,
            0xE0.. => 3,
            0xC0.. => 2,
            _ => 1,
        };
        return if need > back { back } else { 0 };
    }
    0
}

/// Split a UTF-8 stream into chunks without cutting a character: returns the longest valid
/// prefix (lossily decoded where bytes are invalid) and keeps an incomplete tail in `carry`.
pub fn decode_utf8_stream(carry: &mut Vec<u8>, input: &[u8]) -> String {
    carry.extend_from_slice(input);
    let cut = carry.len() - incomplete_utf8_tail(carry);
    let rest = carry.split_off(cut);
    let out = String::from_utf8_lossy(carry).into_owned();
    *carry = rest;
    out
}

/// Keep large buffers out of glibc's heap: after a big free glibc raises its mmap threshold,
/// so later large allocations (1 MiB inject bodies, output batches) land in the heap and their
/// memory is never given back — a daemon that queued 300 such injects stayed at 639 MB after
/// the session was deleted. A fixed threshold keeps them mmapped: freed means returned.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is called before any threads.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// Give freed heap memory back to the system (glibc keeps it per thread arena otherwise): after
/// a session with megabytes of queued text is deleted, for example.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(valid_session_id("a"));
        assert!(valid_session_id("claude-main_1.x"));
        assert!(valid_session_id(&"a".repeat(128)));
        assert!(!valid_session_id(&"a".repeat(129)));
        assert!(!valid_session_id(""));
        assert!(!valid_session_id("."));
        assert!(!valid_session_id("a..b"));
        assert!(!valid_session_id("a/b"));
        assert!(!valid_session_id("a@b"));
        assert!(!valid_session_id("a b"));
        assert!(!valid_session_id("multicast"));
        assert!(!valid_session_id("broadcast"));
        assert!(!valid_session_id("é"));
    }

    #[test]
    fn utf8_stream_never_splits_a_character() {
        let text = "aé€😀z";
        let bytes = text.as_bytes();
        for split in 0..=bytes.len() {
            let mut carry = Vec::new();
            let mut out = decode_utf8_stream(&mut carry, &bytes[..split]);
            out.push_str(&decode_utf8_stream(&mut carry, &bytes[split..]));
            assert_eq!(out, text, "split at {split}");
            assert!(carry.is_empty());
        }
    }

    #[test]
    fn utf8_stream_replaces_invalid_bytes() {
        let mut carry = Vec::new();
        assert_eq!(decode_utf8_stream(&mut carry, b"a\xffb"), "a\u{fffd}b");
    }

    #[test]
    fn iso_has_millis_and_z() {
        let t = UNIX_EPOCH + Duration::from_millis(1_775_651_696_789);
        assert_eq!(iso(t), "2026-04-08T12:34:56.789Z");
        assert_eq!(parse_iso("2026-04-08T12:34:56.789Z"), Some(t));
    }

    #[test]
    fn concurrent_atomic_writes_never_tear_or_collide() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/state.json");
        let writers: Vec<_> = (0..8)
            .map(|t| {
                let path = path.clone();
                std::thread::spawn(move || {
                    for i in 0..40 {
                        let body = format!(
                            "{{\"t\": {t}, \"i\": {i}, \"pad\": \"{}\"}}",
                            "x".repeat(4096)
                        );
                        write_atomic(&path, body.as_bytes()).unwrap();
                        let text = std::fs::read_to_string(&path).unwrap();
                        assert!(
                            text.starts_with("{\"t\": ") && text.ends_with("\"}"),
                            "{text}"
                        );
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        let names: Vec<String> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["state.json"], "temp files left: {names:?}");
        // Leftovers of a killed writer are found and removed.
        std::fs::write(path.with_file_name(".state.json.tmp.1.2.3"), "x").unwrap();
        remove_stale_temps(&path);
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1
        );
    }

    #[test]
    fn signal_names() {
        assert_eq!(signal_name(libc::SIGTERM), "SIGTERM");
        assert_eq!(signal_name(libc::SIGKILL), "SIGKILL");
    }
}
