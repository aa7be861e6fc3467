//! `telepty mcp install`: the configuration an agent CLI needs to start `telepty mcp`, printed
//! or merged into the client's own file.
//!
//! Merging never drops what the file already holds: JSON files keep their keys and order, and
//! Codex's TOML is edited as text (only our table is added or replaced) so its comments survive.
//! A different entry under the same name is replaced only with `force`; the previous file is
//! kept as `<file>.telepty-backup`.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

/// The agent CLIs we know how to configure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum McpClient {
    /// Claude Code (`~/.claude.json`, or `.mcp.json` with --project)
    Claude,
    /// OpenAI Codex CLI (`$CODEX_HOME/config.toml`, default `~/.codex/config.toml`)
    Codex,
    /// Gemini CLI (`~/.gemini/settings.json`, or `.gemini/settings.json` with --project)
    Gemini,
}

/// What the client should run: `command args…` with `env`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerEntry {
    pub name: String,
    pub command: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

impl ServerEntry {
    /// This executable, `mcp`, and the environment variables that choose the daemon and the
    /// configuration (only those set now, so the server reaches the same daemon as this shell).
    pub fn for_this_executable(name: &str) -> Result<ServerEntry, String> {
        let exe = std::env::current_exe()
            .and_then(std::fs::canonicalize)
            .map_err(|e| format!("cannot find the telepty executable: {e}"))?;
        let env = ["TELEPTY_HOST", "TELEPTY_PORT", "TELEPTY_CONFIG"]
            .iter()
            .filter_map(|k| {
                std::env::var(k)
                    .ok()
                    .filter(|v| !v.trim().is_empty())
                    .map(|v| (k.to_string(), v))
            })
            .collect();
        Ok(ServerEntry {
            name: name.to_string(),
            command: exe.to_string_lossy().into_owned(),
            args: vec!["mcp".into()],
            env,
        })
    }

    fn env_json(&self) -> Map<String, Value> {
        self.env
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect()
    }

    /// The JSON object Claude Code and Gemini CLI keep under `mcpServers.<name>`.
    pub fn json_value(&self, client: McpClient) -> Value {
        let mut o = Map::new();
        if client == McpClient::Claude {
            o.insert("type".into(), json!("stdio"));
        }
        o.insert("command".into(), json!(self.command));
        o.insert("args".into(), json!(self.args));
        if !self.env.is_empty() {
            o.insert("env".into(), Value::Object(self.env_json()));
        }
        Value::Object(o)
    }

    /// Codex's `[mcp_servers.<name>]` table, as TOML text.
    pub fn codex_toml(&self) -> String {
        let q = |s: &str| toml_string(s);
        let args: Vec<String> = self.args.iter().map(|a| q(a)).collect();
        let mut t = format!(
            "[mcp_servers.{}]\ncommand = {}\nargs = [{}]\n",
            self.name,
            q(&self.command),
            args.join(", ")
        );
        if !self.env.is_empty() {
            let env: Vec<String> = self
                .env
                .iter()
                .map(|(k, v)| format!("{k} = {}", q(v)))
                .collect();
            t.push_str(&format!("env = {{ {} }}\n", env.join(", ")));
        }
        t
    }
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// Server names become TOML keys and JSON keys; keep them plain.
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(format!(
            "invalid server name {name:?}: use 1–64 letters, digits, '-' or '_'"
        ));
    }
    Ok(())
}

/// Which file a client reads, for the user or for the current project.
pub fn config_file(
    client: McpClient,
    project: bool,
    home: &Path,
    cwd: &Path,
    codex_home: Option<&Path>,
) -> Result<PathBuf, String> {
    Ok(match (client, project) {
        (McpClient::Claude, false) => home.join(".claude.json"),
        (McpClient::Claude, true) => cwd.join(".mcp.json"),
        (McpClient::Gemini, false) => home.join(".gemini").join("settings.json"),
        (McpClient::Gemini, true) => cwd.join(".gemini").join("settings.json"),
        (McpClient::Codex, false) => codex_home
            .map(Path::to_path_buf)
            .unwrap_or_else(|| home.join(".codex"))
            .join("config.toml"),
        (McpClient::Codex, true) => {
            return Err("Codex has no project-level MCP configuration; drop --project".into());
        }
    })
}

/// The text to print: the snippet to merge by hand.
pub fn snippet(client: McpClient, entry: &ServerEntry) -> String {
    match client {
        McpClient::Codex => entry.codex_toml(),
        McpClient::Claude | McpClient::Gemini => {
            let v = json!({ "mcpServers": { entry.name.clone(): entry.json_value(client) } });
            let mut s = serde_json::to_string_pretty(&v).unwrap_or_default();
            s.push('\n');
            s
        }
    }
}

/// The outcome of merging our entry into a file's text.
#[derive(Debug, PartialEq, Eq)]
pub enum Merge {
    /// The entry is already there, exactly.
    Unchanged,
    /// The new text of the file; `replaced` when an older entry of the same name went.
    Updated { text: String, replaced: bool },
}

/// Merge into a JSON client configuration (`existing` = the file's text, `None` if missing).
pub fn merge_json(
    client: McpClient,
    existing: Option<&str>,
    entry: &ServerEntry,
    force: bool,
) -> Result<Merge, String> {
    let mut root = match existing.map(str::trim) {
        None | Some("") => Value::Object(Map::new()),
        Some(text) => serde_json::from_str::<Value>(text)
            .map_err(|e| format!("not valid JSON (line {}): {e}", e.line()))?,
    };
    let Some(obj) = root.as_object_mut() else {
        return Err("the file does not hold a JSON object".into());
    };
    let servers = obj
        .entry("mcpServers")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(servers) = servers.as_object_mut() else {
        return Err("\"mcpServers\" is not a JSON object".into());
    };
    let want = entry.json_value(client);
    let replaced = match servers.get(&entry.name) {
        Some(have) if *have == want => return Ok(Merge::Unchanged),
        Some(_) if !force => return Err(differs(&entry.name)),
        Some(_) => true,
        None => false,
    };
    servers.insert(entry.name.clone(), want);
    let mut text = serde_json::to_string_pretty(&root).map_err(|e| e.to_string())?;
    text.push('\n');
    Ok(Merge::Updated { text, replaced })
}

fn differs(name: &str) -> String {
    format!("a different {name:?} MCP server is already configured (use --force to replace it)")
}

/// Merge into Codex's config.toml as text: an existing `[mcp_servers.<name>]` table (and its
/// sub-tables) is cut out, and ours is appended. The result is parsed again to make sure the
/// entry reads back exactly.
pub fn merge_codex(
    existing: Option<&str>,
    entry: &ServerEntry,
    force: bool,
) -> Result<Merge, String> {
    let text = existing.unwrap_or("");
    let parsed: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| format!("not valid TOML: {}", e.message()))?;
    let want: toml::Table = entry
        .codex_toml()
        .parse()
        .map_err(|e: toml::de::Error| e.message().to_string())?;
    let want = want["mcp_servers"][entry.name.as_str()].clone();
    let have = parsed
        .get("mcp_servers")
        .and_then(|s| s.get(entry.name.as_str()));
    let replaced = match have {
        Some(h) if *h == want => return Ok(Merge::Unchanged),
        Some(_) if !force => return Err(differs(&entry.name)),
        Some(_) => true,
        None => false,
    };
    let mut out = if replaced {
        cut_table(text, &entry.name).ok_or_else(|| {
            format!(
                "mcp_servers.{} is not written as a [mcp_servers.{}] table; edit the file by hand",
                entry.name, entry.name
            )
        })?
    } else {
        text.to_string()
    };
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    if !out.trim().is_empty() && !out.ends_with("\n\n") {
        out.push('\n');
    }
    out.push_str(&entry.codex_toml());
    let check: toml::Table = out.parse().map_err(|e: toml::de::Error| {
        format!("the merged file would not parse: {}", e.message())
    })?;
    let got = check
        .get("mcp_servers")
        .and_then(|s| s.get(entry.name.as_str()));
    if got != Some(&want) {
        return Err(format!(
            "mcp_servers.{} would not read back as written; edit the file by hand",
            entry.name
        ));
    }
    Ok(Merge::Updated {
        text: out,
        replaced,
    })
}

/// `text` without the `[mcp_servers.<name>]` table and its `[mcp_servers.<name>.*]` sub-tables;
/// `None` when no such header exists (the entry is written some other way).
fn cut_table(text: &str, name: &str) -> Option<String> {
    let own = format!("mcp_servers.{name}");
    let header_of = |line: &str| -> Option<String> {
        let t = line.trim();
        let inner = t.strip_prefix('[')?.split(']').next()?;
        Some(inner.trim_start_matches('[').replace([' ', '"'], ""))
    };
    let mut out = String::with_capacity(text.len());
    let mut cutting = false;
    let mut found = false;
    for line in text.split_inclusive('\n') {
        if let Some(h) = header_of(line) {
            cutting = h == own || h.starts_with(&format!("{own}."));
            found |= cutting;
        }
        if !cutting {
            out.push_str(line);
        }
    }
    found.then_some(out)
}

/// Remove MCP server `name` from a JSON client configuration; `None` when it is not there.
pub fn remove_json(existing: &str, name: &str) -> Result<Option<String>, String> {
    let mut root: Value = serde_json::from_str(existing)
        .map_err(|e| format!("not valid JSON (line {}): {e}", e.line()))?;
    let Some(servers) = root.get_mut("mcpServers").and_then(Value::as_object_mut) else {
        return Ok(None);
    };
    // shift_remove keeps the other entries in their order.
    if servers.shift_remove(name).is_none() {
        return Ok(None);
    }
    let mut text = serde_json::to_string_pretty(&root).map_err(|e| e.to_string())?;
    text.push('\n');
    Ok(Some(text))
}

/// Remove `[mcp_servers.<name>]` (and its sub-tables) from Codex's config.toml as text;
/// `None` when it is not there.
pub fn remove_codex(existing: &str, name: &str) -> Result<Option<String>, String> {
    let parsed: toml::Table = existing
        .parse()
        .map_err(|e: toml::de::Error| format!("not valid TOML: {}", e.message()))?;
    let present = parsed
        .get("mcp_servers")
        .and_then(|s| s.get(name))
        .is_some();
    if !present {
        return Ok(None);
    }
    let out = cut_table(existing, name).ok_or_else(|| {
        format!("mcp_servers.{name} is not written as a [mcp_servers.{name}] table; edit the file by hand")
    })?;
    let check: toml::Table = out.parse().map_err(|e: toml::de::Error| {
        format!("the edited file would not parse: {}", e.message())
    })?;
    if check.get("mcp_servers").and_then(|s| s.get(name)).is_some() {
        return Err(format!(
            "mcp_servers.{name} is also set elsewhere; edit the file by hand"
        ));
    }
    Ok(Some(out))
}

/// Remove MCP server `name` from `path`. Returns a line for the user; the previous file is
/// kept as `<path>.telepty-backup`.
pub fn uninstall(client: McpClient, path: &Path, name: &str) -> Result<String, String> {
    let absent = || format!("no MCP server {name} in {}", path.display());
    let existing = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(absent()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let edited = match client {
        McpClient::Codex => remove_codex(&existing, name),
        McpClient::Claude | McpClient::Gemini => remove_json(&existing, name),
    }
    .map_err(|e| format!("{}: {e}", path.display()))?;
    let Some(text) = edited else {
        return Ok(absent());
    };
    replace_file(path, Some(&existing), &text)?;
    Ok(format!("removed MCP server {name} from {}", path.display()))
}

/// Write `text` to `path` atomically (creating its directory), keeping `old` as the backup.
fn replace_file(path: &Path, old: Option<&str>, text: &str) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    if let Some(old) = old {
        let backup = backup_path(path);
        std::fs::write(&backup, old).map_err(|e| format!("{}: {e}", backup.display()))?;
    }
    crate::util::write_atomic(path, text.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))
}

/// Merge `entry` into `path` (created when missing, with its directory). Returns a line for the
/// user. The previous file is kept as `<path>.telepty-backup`.
pub fn write(
    client: McpClient,
    path: &Path,
    entry: &ServerEntry,
    force: bool,
) -> Result<String, String> {
    let existing = match std::fs::read_to_string(path) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let merged = match client {
        McpClient::Codex => merge_codex(existing.as_deref(), entry, force),
        McpClient::Claude | McpClient::Gemini => {
            merge_json(client, existing.as_deref(), entry, force)
        }
    }
    .map_err(|e| format!("{}: {e}", path.display()))?;
    let Merge::Updated { text, replaced } = merged else {
        return Ok(format!(
            "{} already configured in {}",
            entry.name,
            path.display()
        ));
    };
    replace_file(path, existing.as_deref(), &text)?;
    let verb = if replaced { "replaced" } else { "added" };
    Ok(format!(
        "{verb} MCP server {} in {}",
        entry.name,
        path.display()
    ))
}

pub fn backup_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".telepty-backup");
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> ServerEntry {
        ServerEntry {
            name: "telepty".into(),
            command: "/opt/bin/telepty".into(),
            args: vec!["mcp".into()],
            env: vec![],
        }
    }

    fn updated(m: Merge) -> (String, bool) {
        match m {
            Merge::Updated { text, replaced } => (text, replaced),
            Merge::Unchanged => panic!("expected an update"),
        }
    }

    #[test]
    fn json_merge_keeps_other_keys_in_their_order() {
        let existing = r#"{"zeta": 1, "mcpServers": {"other": {"command": "x"}}, "alpha": [1, 2]}"#;
        let (text, replaced) =
            updated(merge_json(McpClient::Claude, Some(existing), &entry(), false).unwrap());
        assert!(!replaced);
        let v: Value = serde_json::from_str(&text).unwrap();
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["zeta", "mcpServers", "alpha"]);
        assert_eq!(v["mcpServers"]["other"]["command"], "x");
        assert_eq!(
            v["mcpServers"]["telepty"],
            json!({"type": "stdio", "command": "/opt/bin/telepty", "args": ["mcp"]})
        );
        // Again: nothing to do.
        assert_eq!(
            merge_json(McpClient::Claude, Some(&text), &entry(), false).unwrap(),
            Merge::Unchanged
        );
    }

    #[test]
    fn json_merge_refuses_a_different_entry_without_force() {
        let existing = r#"{"mcpServers": {"telepty": {"command": "/old/telepty", "args": []}}}"#;
        let err = merge_json(McpClient::Gemini, Some(existing), &entry(), false).unwrap_err();
        assert!(err.contains("--force"), "{err}");
        let (text, replaced) =
            updated(merge_json(McpClient::Gemini, Some(existing), &entry(), true).unwrap());
        assert!(replaced);
        let v: Value = serde_json::from_str(&text).unwrap();
        // Gemini's entry has no "type".
        assert_eq!(
            v["mcpServers"]["telepty"],
            json!({"command": "/opt/bin/telepty", "args": ["mcp"]})
        );
    }

    #[test]
    fn json_merge_rejects_what_it_cannot_edit() {
        for (bad, want) in [
            ("{not json", "not valid JSON"),
            ("[1, 2]", "JSON object"),
            (r#"{"mcpServers": 3}"#, "\"mcpServers\" is not"),
        ] {
            let err = merge_json(McpClient::Claude, Some(bad), &entry(), true).unwrap_err();
            assert!(err.contains(want), "{bad}: {err}");
        }
        // A missing or empty file is a fresh start.
        for empty in [None, Some(""), Some("  \n")] {
            let (text, _) = updated(merge_json(McpClient::Claude, empty, &entry(), false).unwrap());
            assert!(text.contains("\"mcpServers\""));
        }
    }

    #[test]
    fn codex_merge_appends_a_table_and_keeps_comments() {
        let existing = "# my codex settings\nmodel = \"o3\" # favourite\n\n[mcp_servers.other]\ncommand = \"x\"\n";
        let mut e = entry();
        e.env = vec![("TELEPTY_PORT".into(), "4000".into())];
        let (text, replaced) = updated(merge_codex(Some(existing), &e, false).unwrap());
        assert!(!replaced);
        assert!(text.starts_with(existing), "{text}");
        assert!(text.ends_with(
            "\n\n[mcp_servers.telepty]\ncommand = \"/opt/bin/telepty\"\nargs = [\"mcp\"]\nenv = { TELEPTY_PORT = \"4000\" }\n"
        ), "{text}");
        assert_eq!(
            merge_codex(Some(&text), &e, false).unwrap(),
            Merge::Unchanged
        );
    }

    #[test]
    fn codex_merge_replaces_only_our_table_with_force() {
        let existing = "[mcp_servers.telepty]\ncommand = \"/old\"\nargs = []\n\n[mcp_servers.telepty.env]\nA = \"1\"\n\n[mcp_servers.other]\ncommand = \"x\"\n# trailing comment\n";
        assert!(
            merge_codex(Some(existing), &entry(), false)
                .unwrap_err()
                .contains("--force")
        );
        let (text, replaced) = updated(merge_codex(Some(existing), &entry(), true).unwrap());
        assert!(replaced);
        assert!(!text.contains("/old") && !text.contains("A = "), "{text}");
        assert!(text.contains("[mcp_servers.other]\ncommand = \"x\"\n# trailing comment\n"));
        let t: toml::Table = text.parse().unwrap();
        assert_eq!(
            t["mcp_servers"]["telepty"]["command"].as_str(),
            Some("/opt/bin/telepty")
        );
    }

    #[test]
    fn codex_merge_will_not_guess_at_inline_tables() {
        let existing = "mcp_servers = { telepty = { command = \"/old\" } }\n";
        let err = merge_codex(Some(existing), &entry(), true).unwrap_err();
        assert!(err.contains("edit the file by hand"), "{err}");
        assert!(
            merge_codex(Some("= broken"), &entry(), true)
                .unwrap_err()
                .contains("not valid TOML")
        );
    }

    #[test]
    fn removal_takes_only_our_entry() {
        let json = r#"{"a": 1, "mcpServers": {"x": {"command": "x"}, "telepty": {"command": "t"}, "y": {}}, "z": 2}"#;
        let out = remove_json(json, "telepty").unwrap().unwrap();
        let v: Value = serde_json::from_str(&out).unwrap();
        let keys: Vec<&String> = v["mcpServers"].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["x", "y"]);
        assert_eq!((v["a"].clone(), v["z"].clone()), (json!(1), json!(2)));
        assert_eq!(remove_json(&out, "telepty").unwrap(), None);
        assert_eq!(remove_json("{}", "telepty").unwrap(), None);
        assert!(remove_json("{nope", "telepty").is_err());

        let toml_text = "# keep me\n[mcp_servers.other]\ncommand = \"o\"\n\n[mcp_servers.telepty]\ncommand = \"t\"\n[mcp_servers.telepty.env]\nA = \"1\"\n\n[after]\nk = 1\n";
        let out = remove_codex(toml_text, "telepty").unwrap().unwrap();
        assert_eq!(
            out,
            "# keep me\n[mcp_servers.other]\ncommand = \"o\"\n\n[after]\nk = 1\n"
        );
        assert_eq!(remove_codex(&out, "telepty").unwrap(), None);
        let inline = "mcp_servers = { telepty = { command = \"t\" } }\n";
        assert!(
            remove_codex(inline, "telepty")
                .unwrap_err()
                .contains("by hand")
        );
    }

    #[test]
    fn codex_toml_quotes_paths() {
        let mut e = entry();
        e.command = "/home/a b/\"odd\"/telepty".into();
        let t: toml::Table = e.codex_toml().parse().unwrap();
        assert_eq!(
            t["mcp_servers"]["telepty"]["command"].as_str(),
            Some(e.command.as_str())
        );
    }

    #[test]
    fn files_per_client_and_scope() {
        let (home, cwd) = (Path::new("/h"), Path::new("/p"));
        let f = |c, p| config_file(c, p, home, cwd, None);
        assert_eq!(
            f(McpClient::Claude, false).unwrap(),
            Path::new("/h/.claude.json")
        );
        assert_eq!(
            f(McpClient::Claude, true).unwrap(),
            Path::new("/p/.mcp.json")
        );
        assert_eq!(
            f(McpClient::Gemini, false).unwrap(),
            Path::new("/h/.gemini/settings.json")
        );
        assert_eq!(
            f(McpClient::Gemini, true).unwrap(),
            Path::new("/p/.gemini/settings.json")
        );
        assert_eq!(
            f(McpClient::Codex, false).unwrap(),
            Path::new("/h/.codex/config.toml")
        );
        assert!(f(McpClient::Codex, true).is_err());
        let ch = config_file(McpClient::Codex, false, home, cwd, Some(Path::new("/c"))).unwrap();
        assert_eq!(ch, Path::new("/c/config.toml"));
    }

    #[test]
    fn names_are_plain() {
        assert!(validate_name("telepty").is_ok());
        assert!(validate_name("telepty-2_b").is_ok());
        for bad in ["", "a.b", "a b", "x]y", &"n".repeat(65)] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }
}
