//! Writes to config.toml (`telepty peers add|remove`), through toml_edit so that the user's
//! comments, blank lines and key order stay as they were: only the `[[peers]]` entry concerned
//! changes. The file is written atomically with mode 0600 (peer tokens are secrets).

use std::path::{Path, PathBuf};

use toml_edit::{ArrayOfTables, DocumentMut, Item, Table, TableLike, Value};

use super::Peer;

/// Why config.toml could not be edited.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot parse {}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("`peers` in config.toml is not an array of tables ([[peers]])")]
    NotPeers,
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Add (or replace, by name) a `[[peers]]` entry of the config.toml at `path`, keeping the
/// other keys of a replaced entry. Returns true when an entry of that name was replaced.
pub fn add_peer(path: &Path, peer: &Peer) -> Result<bool, EditError> {
    let mut doc = read(path)?;
    let fill = |t: &mut dyn TableLike| {
        set_str(t, "name", &peer.name);
        set_str(t, "url", &peer.url);
        match &peer.token {
            Some(tok) => set_str(t, "token", tok),
            None => drop(t.remove("token")),
        }
    };
    let replaced = match doc.get_mut("peers") {
        None => {
            let mut t = Table::new();
            fill(&mut t);
            // The new table goes last, after whatever trails the document (the commented
            // `[[peers]]` example of `config init`): that text becomes its prefix, and
            // `remove_peer` gives it back.
            let tail = doc.trailing().as_str().unwrap_or("").to_string();
            let sep = if doc.to_string().trim().is_empty() || tail.ends_with("\n\n") {
                ""
            } else {
                "\n"
            };
            t.decor_mut().set_prefix(format!("{tail}{sep}"));
            doc.set_trailing("");
            let mut list = ArrayOfTables::new();
            list.push(t);
            doc.insert("peers", Item::ArrayOfTables(list));
            false
        }
        Some(Item::ArrayOfTables(list)) => {
            if let Some(t) = list.iter_mut().find(|t| named(*t, &peer.name)) {
                fill(t);
                true
            } else {
                let mut t = Table::new();
                fill(&mut t);
                t.decor_mut().set_prefix("\n");
                list.push(t);
                false
            }
        }
        Some(Item::Value(Value::Array(list))) => {
            let slot = list
                .iter_mut()
                .filter_map(Value::as_inline_table_mut)
                .find(|t| named(*t, &peer.name));
            match slot {
                Some(t) => {
                    fill(t);
                    true
                }
                None => {
                    let mut t = toml_edit::InlineTable::new();
                    fill(&mut t);
                    list.push(t);
                    false
                }
            }
        }
        Some(_) => return Err(EditError::NotPeers),
    };
    write(path, &doc)?;
    Ok(replaced)
}

/// Remove the `[[peers]]` entries named `name`. Returns false when there was none.
pub fn remove_peer(path: &Path, name: &str) -> Result<bool, EditError> {
    let mut doc = read(path)?;
    let removed = match doc.get_mut("peers") {
        None => return Ok(false),
        Some(Item::ArrayOfTables(list)) => {
            let before = list.len();
            // What preceded each removed table (comments included) is kept: it goes in
            // front of what now follows, or to the end of the document.
            let mut orphans = Vec::new();
            list.retain(|t| {
                if !named(t, name) {
                    return true;
                }
                let prefix = t.decor().prefix().and_then(|p| p.as_str()).unwrap_or("");
                orphans.push((t.position(), prefix.to_string()));
                false
            });
            let removed = list.len() != before;
            if list.is_empty() {
                doc.remove("peers");
            }
            for (pos, prefix) in orphans {
                give_back_prefix(&mut doc, pos, &prefix);
            }
            removed
        }
        Some(Item::Value(Value::Array(list))) => {
            let before = list.len();
            list.retain(|v| v.as_inline_table().is_none_or(|t| !named(t, name)));
            let removed = list.len() != before;
            if list.is_empty() {
                doc.remove("peers");
            }
            removed
        }
        Some(_) => return Err(EditError::NotPeers),
    };
    if removed {
        write(path, &doc)?;
    }
    Ok(removed)
}

/// Put the prefix text (leading comments) of a removed table back: in front of the table that now follows it,
/// else at the end of the document. A prefix of blank lines only is dropped (we wrote it).
pub fn give_back_prefix(doc: &mut DocumentMut, pos: Option<isize>, prefix: &str) {
    if prefix.trim().is_empty() {
        return;
    }
    let text = format!("{}\n", prefix.trim_end_matches('\n'));
    let next = pos.and_then(|p| {
        let mut best = None;
        visit(doc.as_table_mut(), &mut |t| {
            if let Some(q) = t.position().filter(|&q| q > p) {
                best = Some(best.map_or(q, |b: isize| b.min(q)));
            }
        });
        best
    });
    let mut done = false;
    if let Some(next) = next {
        visit(doc.as_table_mut(), &mut |t| {
            if !done && t.position() == Some(next) {
                let old = t.decor().prefix().and_then(|p| p.as_str()).unwrap_or("");
                let new = format!("{text}{old}");
                t.decor_mut().set_prefix(new);
                done = true;
            }
        });
    }
    if !done {
        let tail = doc.trailing().as_str().unwrap_or("").to_string();
        doc.set_trailing(format!("{tail}{text}"));
    }
}

/// Every table under `t` (array-of-tables entries included), depth first.
fn visit(t: &mut Table, f: &mut dyn FnMut(&mut Table)) {
    for (_, item) in t.iter_mut() {
        match item {
            Item::Table(sub) => {
                f(sub);
                visit(sub, f);
            }
            Item::ArrayOfTables(list) => {
                for sub in list.iter_mut() {
                    f(sub);
                    visit(sub, f);
                }
            }
            _ => {}
        }
    }
}

fn named(t: &dyn TableLike, name: &str) -> bool {
    t.get("name")
        .and_then(Item::as_str)
        // Peer names are case-insensitive: `add X` replaces `x`, `remove X` removes it.
        .is_some_and(|n| n.trim().eq_ignore_ascii_case(name))
}

/// Set a string value, keeping the spacing and any comment around an existing one.
fn set_str(t: &mut dyn TableLike, key: &str, v: &str) {
    match t.get_mut(key).and_then(Item::as_value_mut) {
        Some(old) => {
            let decor = old.decor().clone();
            *old = Value::from(v);
            *old.decor_mut() = decor;
        }
        None => {
            t.insert(key, toml_edit::value(v));
        }
    }
}

fn read(path: &Path) -> Result<DocumentMut, EditError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(source) => {
            let path = path.to_path_buf();
            return Err(EditError::Read { path, source });
        }
    };
    text.parse::<DocumentMut>().map_err(|e| EditError::Parse {
        path: path.to_path_buf(),
        message: e
            .to_string()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" "),
    })
}

/// Write atomically with mode 0600 (the directory is created if needed).
fn write(path: &Path, doc: &DocumentMut) -> Result<(), EditError> {
    let err = |source| EditError::Write {
        path: path.to_path_buf(),
        source,
    };
    crate::util::write_atomic(path, doc.to_string().as_bytes()).map_err(err)?;
    // write_atomic creates with 0600; this also covers a file that had other bits before.
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    Ok(())
}
