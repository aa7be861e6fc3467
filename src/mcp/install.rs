//! `telepty mcp install`: the configuration an agent CLI needs to start `telepty mcp`, printed
//! or merged into the client's own file.
//!
//! Merging never drops what the file already holds: JSON files keep their keys and order, and
//! Codex's TOML is edited with toml_edit (only our table is added, replaced or removed) so its
//! comments and layout survive.
//! A different entry under the same name is replaced only with `force`; the previous file is
//! kept as `<file>.telepty-backup`.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use toml_edit::{DocumentMut, Item, Table};

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

    /// The JSON object Claude Code and Gemini CLI keep under `mcpServers.<name>`.
    pub fn json_value(&self, client: McpClient) -> Value {
        /// Claude Code wants `type`; `env` only when there is one.
        #[derive(serde::Serialize)]
        struct Entry<'a> {
            #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
            kind: Option<&'static str>,
            command: &'a str,
            args: &'a [String],
            #[serde(skip_serializing_if = "Map::is_empty")]
            env: Map<String, Value>,
        }
        crate::wire::value(&Entry {
            kind: (client == McpClient::Claude).then_some("stdio"),
            command: &self.command,
            args: &self.args,
            env: self
                .env
                .iter()
                .map(|(k, v)| (k.clone(), v.clone().into()))
                .collect(),
        })
    }

    /// Codex's `[mcp_servers.<name>]` table, as TOML text.
    pub fn codex_toml(&self) -> String {
        let mut servers = Table::new();
        servers.set_implicit(true);
        servers.insert(&self.name, Item::Table(self.codex_table()));
        let mut doc = DocumentMut::new();
        doc.insert("mcp_servers", Item::Table(servers));
        doc.to_string()
    }

    /// Our entry as a table: `command`, `args`, and `env` (inline) when there is any.
    fn codex_table(&self) -> Table {
        let mut t = Table::new();
        t.insert("command", toml_edit::value(&self.command));
        let args: toml_edit::Array = self.args.iter().collect();
        t.insert("args", toml_edit::value(args));
        if !self.env.is_empty() {
            let env: toml_edit::InlineTable =
                self.env.iter().map(|(k, v)| (k.as_str(), v)).collect();
            t.insert("env", toml_edit::value(env));
        }
        t
    }
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
            let servers = Map::from_iter([(entry.name.clone(), entry.json_value(client))]);
            let v = Map::from_iter([("mcpServers".to_string(), Value::Object(servers))]);
            json_text(&v).unwrap_or_default()
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
    let text = json_text(&root)?;
    Ok(Merge::Updated { text, replaced })
}

/// A JSON file's text: pretty, with a final newline.
fn json_text(v: &impl serde::Serialize) -> Result<String, String> {
    let text = serde_json::to_string_pretty(v).map_err(|e| e.to_string())?;
    Ok(text + "\n")
}

fn differs(name: &str) -> String {
    format!("a different {name:?} MCP server is already configured (use --force to replace it)")
}

/// Merge into Codex's config.toml: an existing `mcp_servers.<name>` entry (with its sub-tables)
/// is replaced where it stands, else ours is added after the other tables. The result is read
/// back to make sure the entry is exactly what we meant.
pub fn merge_codex(
    existing: Option<&str>,
    entry: &ServerEntry,
    force: bool,
) -> Result<Merge, String> {
    let text = existing.unwrap_or("");
    let want = codex_entry(&entry.codex_toml(), &entry.name)?.ok_or("internal: no entry")?;
    let replaced = match codex_entry(text, &entry.name)? {
        Some(h) if h == want => return Ok(Merge::Unchanged),
        Some(_) if !force => return Err(differs(&entry.name)),
        Some(_) => true,
        None => false,
    };
    let mut doc = parse_codex(text)?;
    let servers = doc.entry("mcp_servers").or_insert_with(|| {
        let mut t = Table::new();
        t.set_implicit(true);
        Item::Table(t)
    });
    let mut ours = entry.codex_table();
    match servers {
        Item::Table(t) => {
            match t.get(&entry.name).and_then(Item::as_table) {
                // In place: same position, same leading comments.
                Some(old) => {
                    ours.set_position(old.position());
                    *ours.decor_mut() = old.decor().clone();
                }
                None if !text.trim().is_empty() => ours.decor_mut().set_prefix("\n"),
                None => {}
            }
            t.insert(&entry.name, Item::Table(ours));
        }
        // `mcp_servers = { … }`: stay in that form.
        Item::Value(toml_edit::Value::InlineTable(t)) => {
            t.insert(&entry.name, ours.into_inline_table().into());
        }
        _ => return Err("mcp_servers is not a table".into()),
    }
    let out = doc.to_string();
    if codex_entry(&out, &entry.name)?.as_ref() != Some(&want) {
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

fn parse_codex(text: &str) -> Result<DocumentMut, String> {
    text.parse::<DocumentMut>()
        .map_err(|e| format!("not valid TOML: {}", e.message()))
}

/// `mcp_servers.<name>` of a Codex config, as plain data (for comparing entries).
fn codex_entry(text: &str, name: &str) -> Result<Option<toml::Value>, String> {
    let parsed: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| format!("not valid TOML: {}", e.message()))?;
    Ok(parsed.get("mcp_servers").and_then(|s| s.get(name)).cloned())
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
    json_text(&root).map(Some)
}

/// Remove `mcp_servers.<name>` (and its sub-tables) from Codex's config.toml; `None` when it
/// is not there. Comments in front of the removed table are kept.
pub fn remove_codex(existing: &str, name: &str) -> Result<Option<String>, String> {
    let mut doc = parse_codex(existing)?;
    let Some(servers) = doc.get_mut("mcp_servers").and_then(Item::as_table_like_mut) else {
        return Ok(None);
    };
    let Some(old) = servers.remove(name) else {
        return Ok(None);
    };
    if let Item::Table(t) = &old {
        let prefix = t.decor().prefix().and_then(|p| p.as_str()).unwrap_or("");
        crate::config::give_back_prefix(&mut doc, t.position(), prefix);
    }
    Ok(Some(doc.to_string()))
}

/// Remove MCP server `name` from `path`. Returns a line for the user; the previous file is
/// kept as `<path>.telepty-backup`.
pub fn uninstall(client: McpClient, path: &Path, name: &str) -> Result<String, String> {
    let absent = || format!("no MCP server {name} in {}", path.display());
    let Some(existing) = read_existing(path)? else {
        return Ok(absent());
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

/// The file's text; `None` when there is no file.
fn read_existing(path: &Path) -> Result<Option<String>, String> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
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
    let existing = read_existing(path)?;
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
    use serde_json::json;

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
    fn codex_inline_tables_are_edited_in_their_form() {
        // The text surgery this replaced refused these ("edit the file by hand").
        let existing = "# mine\nmcp_servers = { telepty = { command = \"/old\" }, other = { command = \"o\" } }\n";
        assert!(
            merge_codex(Some(existing), &entry(), false)
                .unwrap_err()
                .contains("--force")
        );
        let (text, replaced) = updated(merge_codex(Some(existing), &entry(), true).unwrap());
        assert!(replaced);
        assert_eq!(
            text,
            "# mine\nmcp_servers = { telepty = { command = \"/opt/bin/telepty\", args = [\"mcp\"] }, other = { command = \"o\" } }\n"
        );
        assert_eq!(
            remove_codex(&text, "telepty").unwrap().unwrap(),
            "# mine\nmcp_servers = { other = { command = \"o\" } }\n"
        );
        assert!(
            merge_codex(Some("= broken"), &entry(), true)
                .unwrap_err()
                .contains("not valid TOML")
        );
    }

    #[test]
    fn codex_edits_keep_comments_around_our_table() {
        let existing = "model = \"o3\"\n\n# telepty, added by hand\n[mcp_servers.telepty] # ours\ncommand = \"/old\"\nargs = []\n\n# the next one\n[mcp_servers.other]\ncommand = \"x\"\n";
        let (text, _) = updated(merge_codex(Some(existing), &entry(), true).unwrap());
        assert_eq!(
            text,
            "model = \"o3\"\n\n# telepty, added by hand\n[mcp_servers.telepty] # ours\ncommand = \"/opt/bin/telepty\"\nargs = [\"mcp\"]\n\n# the next one\n[mcp_servers.other]\ncommand = \"x\"\n"
        );
        assert_eq!(
            remove_codex(&text, "telepty").unwrap().unwrap(),
            "model = \"o3\"\n\n# telepty, added by hand\n\n# the next one\n[mcp_servers.other]\ncommand = \"x\"\n"
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
