//! Agent profiles: how one kind of program reads its input and shows its state on the rendered
//! screen — where its input area is, what a busy turn looks like, how text is pasted, which key
//! submits and which clears. One model for delivery (the screen gate in `gate.rs`) and for agent
//! state.
//!
//! Built-in profiles are embedded from `assets/profiles/*.toml`; a file
//! `~/.config/telepty/profiles/<name>.toml` (beside config.toml) replaces one or adds one. A
//! session's profile is named at spawn (`profile`), else chosen by its command.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use regex::Regex;
use serde::Deserialize;

/// Built-in profiles, in the order commands are matched (the generic one matches nothing).
const BUILTIN: &[(&str, &str)] = &[
    ("claude", include_str!("../../assets/profiles/claude.toml")),
    ("codex", include_str!("../../assets/profiles/codex.toml")),
    ("gemini", include_str!("../../assets/profiles/gemini.toml")),
    ("shell", include_str!("../../assets/profiles/shell.toml")),
    ("python", include_str!("../../assets/profiles/python.toml")),
    (
        "generic",
        include_str!("../../assets/profiles/generic.toml"),
    ),
];

pub const GENERIC: &str = "generic";

/// Interpreters that run the real program as their first argument (`node …/claude`): the
/// script names the profile first, the interpreter second.
const LAUNCHERS: &[&str] = &[
    "node", "nodejs", "npx", "bun", "bunx", "deno", "env", "python", "python3", "uv", "uvx",
];

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
    #[error("{file}: {source}")]
    Io {
        file: String,
        source: std::io::Error,
    },
}

/// How text reaches the program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Paste {
    /// Multi-line text in bracketed paste when the program enabled it (DECSET 2004).
    Bracketed,
    /// Always typed; line breaks inside the text become the profile's `newline` keys.
    Typed,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ScreenFile {
    prompt: Option<String>,
    input_end: Option<String>,
    busy: Option<String>,
    busy_title: Option<String>,
    pasted: Option<String>,
}

/// A missing key takes its value from `KeysFile::default()`.
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct KeysFile {
    paste: Paste,
    submit: String,
    newline: Option<String>,
    clear: Option<String>,
    paste_over_chars: Option<usize>,
}

impl Default for KeysFile {
    fn default() -> Self {
        KeysFile {
            paste: Paste::Bracketed,
            submit: "\r".into(),
            newline: None,
            clear: None,
            paste_over_chars: None,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TimingFile {
    consume_timeout_ms: Option<u64>,
    enter_gap_ms: Option<u64>,
    confirm_timeout_ms: Option<u64>,
    ready_timeout_ms: Option<u64>,
    ready_quiet_ms: Option<u64>,
    submit_retries: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct ProfileFile {
    commands: Vec<String>,
    screen: ScreenFile,
    keys: KeysFile,
    timing: TimingFile,
}

/// One program's input model, compiled.
#[derive(Debug)]
pub struct Profile {
    pub name: String,
    pub commands: Vec<String>,
    /// A row that starts the input area (the last such row on the screen). Without it the input
    /// area is the logical line under the cursor.
    pub prompt: Option<Regex>,
    /// The first row after the prompt that is no longer input (a box's bottom border).
    pub input_end: Option<Regex>,
    /// Shown while a turn runs (anywhere on the screen).
    pub busy: Option<Regex>,
    /// The window title while a turn runs (agents animate a spinner there).
    pub busy_title: Option<Regex>,
    /// What the input area shows instead of a long paste (`[Pasted text #1 +40 lines]`).
    pub pasted: Option<Regex>,
    pub paste: Paste,
    pub submit: String,
    pub newline: Option<String>,
    pub clear: Option<String>,
    /// One-line text at least this long is pasted too (bracketed), not typed: some programs
    /// read a long typed burst in pieces.
    pub paste_over_chars: Option<usize>,
    /// How long typed text may take to show in the input area. `None`: the quiet-window gate of
    /// API.md §6.2, bounded by `[inject] submit_max_ms`.
    pub consume_timeout: Option<Duration>,
    /// Between seeing the text and sending the Enter, so it is read on its own.
    pub enter_gap: Duration,
    /// How long the input area may take to clear (or the agent to turn busy) after the Enter.
    pub confirm_timeout: Duration,
    /// How long the next message waits for the agent to be ready.
    pub ready_timeout: Duration,
    /// Silence that, with no busy marker, means the agent is ready (spinners animate).
    pub ready_quiet: Duration,
    /// Further Enters when the text is still in the input area after `confirm_timeout`.
    pub submit_retries: u32,
}

impl Profile {
    /// An agent: its profile can tell ready from busy, so delivery waits for ready.
    pub fn is_agent(&self) -> bool {
        (self.busy.is_some() || self.busy_title.is_some()) && self.prompt.is_some()
    }

    fn compile(name: &str, text: &str, file: &str) -> Result<Profile, ProfileError> {
        let invalid = |message: String| ProfileError::Invalid {
            file: file.to_string(),
            message,
        };
        let f: ProfileFile = toml::from_str(text).map_err(|e| invalid(e.message().to_string()))?;
        let re = |key: &str, p: &Option<String>| -> Result<Option<Regex>, ProfileError> {
            p.as_deref()
                .map(|p| Regex::new(p).map_err(|e| invalid(format!("screen.{key}: {e}"))))
                .transpose()
        };
        if f.keys.submit.is_empty() {
            return Err(invalid("keys.submit must not be empty".into()));
        }
        let ms = Duration::from_millis;
        let t = &f.timing;
        Ok(Profile {
            name: name.to_string(),
            commands: f.commands.iter().map(|c| c.to_ascii_lowercase()).collect(),
            prompt: re("prompt", &f.screen.prompt)?,
            input_end: re("input_end", &f.screen.input_end)?,
            busy: re("busy", &f.screen.busy)?,
            busy_title: re("busy_title", &f.screen.busy_title)?,
            pasted: re("pasted", &f.screen.pasted)?,
            paste: f.keys.paste,
            submit: f.keys.submit,
            newline: f.keys.newline,
            clear: f.keys.clear,
            paste_over_chars: f.keys.paste_over_chars,
            consume_timeout: t.consume_timeout_ms.map(ms),
            enter_gap: ms(t.enter_gap_ms.unwrap_or(0)),
            confirm_timeout: ms(t.confirm_timeout_ms.unwrap_or(1000)),
            ready_timeout: ms(t.ready_timeout_ms.unwrap_or(0)),
            ready_quiet: ms(t.ready_quiet_ms.unwrap_or(0)),
            submit_retries: t.submit_retries.unwrap_or(0),
        })
    }

    /// Whether this profile is chosen for a program started as `command args…`.
    fn matches(&self, program: &str) -> bool {
        self.commands
            .iter()
            .any(|c| program == c || program.strip_prefix(c.as_str()).is_some_and(is_version))
    }
}

/// The names a command line's program goes by, lower-cased, most specific first: for a launcher
/// (`node /…/bin/claude`, `python3 agent.py`) the script's basename, then the launcher's own; a
/// script extension is dropped.
pub fn program_names(command: &str, args: &[String]) -> Vec<String> {
    let base = |s: &str| -> String {
        let b = Path::new(s)
            .file_name()
            .map(|f| f.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_else(|| s.to_ascii_lowercase());
        [".js", ".mjs", ".cjs", ".ts", ".py", ".exe"]
            .iter()
            .find_map(|ext| b.strip_suffix(ext).map(str::to_string))
            .unwrap_or(b)
    };
    // A command given as one string ("claude --continue") names its program first.
    let mut words = command.split_whitespace();
    let prog = base(words.next().unwrap_or(command));
    let launcher = LAUNCHERS
        .iter()
        .any(|l| prog == *l || prog.strip_prefix(l).is_some_and(is_version));
    let script = launcher
        .then(|| {
            words
                .chain(args.iter().map(String::as_str))
                .find(|a| !a.starts_with('-') && !a.contains('='))
        })
        .flatten();
    script.map(base).into_iter().chain([prog]).collect()
}

/// `3`, `3.11`: what may follow a program's name (`python3.11`).
fn is_version(rest: &str) -> bool {
    rest.chars().all(|ch| ch.is_ascii_digit() || ch == '.')
}

/// Every profile this process knows: the built-in ones and the user's.
#[derive(Debug)]
pub struct Profiles {
    by_name: BTreeMap<String, Arc<Profile>>,
    /// Names in matching order: the user's files first, then the built-in order.
    order: Vec<String>,
}

impl Profiles {
    pub fn builtin() -> Self {
        let mut p = Profiles {
            by_name: BTreeMap::new(),
            order: Vec::new(),
        };
        for (name, text) in BUILTIN {
            let profile = Profile::compile(name, text, &format!("assets/profiles/{name}.toml"))
                .unwrap_or_else(|e| panic!("built-in profile {name}: {e}"));
            p.by_name.insert(name.to_string(), Arc::new(profile));
            p.order.push(name.to_string());
        }
        p
    }

    /// The built-in profiles, with `dir/*.toml` replacing or adding profiles of that name.
    pub fn load(dir: &Path) -> Result<Self, ProfileError> {
        let mut p = Self::builtin();
        let io = |file: String| move |source| ProfileError::Io { file, source };
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(p),
            Err(source) => return Err(io(dir.display().to_string())(source)),
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|f| f.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        let mut user = Vec::new();
        for file in files {
            let Some(name) = file.file_stem().map(|s| s.to_string_lossy().into_owned()) else {
                continue;
            };
            let shown = file.display().to_string();
            let text = std::fs::read_to_string(&file).map_err(io(shown.clone()))?;
            let profile = Profile::compile(&name, &text, &shown)?;
            p.by_name.insert(name.clone(), Arc::new(profile));
            p.order.retain(|n| *n != name);
            user.push(name);
        }
        user.append(&mut p.order);
        p.order = user;
        Ok(p)
    }

    pub fn get(&self, name: &str) -> Option<Arc<Profile>> {
        self.by_name.get(name).cloned()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }

    /// The profile for a session: the one it names, else the first whose commands match its
    /// program, else the generic one.
    pub fn resolve(&self, named: Option<&str>, command: &str, args: &[String]) -> Arc<Profile> {
        if let Some(p) = named.and_then(|n| self.get(n)) {
            return p;
        }
        program_names(command, args)
            .iter()
            .find_map(|program| {
                self.order
                    .iter()
                    .filter_map(|n| self.by_name.get(n))
                    .find(|p| p.matches(program))
            })
            .cloned()
            .unwrap_or_else(|| self.generic())
    }

    pub fn generic(&self) -> Arc<Profile> {
        self.get(GENERIC)
            .unwrap_or_else(|| Arc::new(Profile::compile(GENERIC, "", "generic").expect("empty")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn builtin_profiles_compile() {
        let p = Profiles::builtin();
        for name in ["claude", "codex", "gemini", "shell", "python", "generic"] {
            assert!(p.get(name).is_some(), "{name}");
        }
        assert!(p.get("claude").unwrap().is_agent());
        assert!(!p.get("shell").unwrap().is_agent());
    }

    #[test]
    fn chosen_by_program() {
        let p = Profiles::builtin();
        let pick = |c: &str, a: &[&str]| p.resolve(None, c, &args(a)).name.clone();
        assert_eq!(pick("claude", &[]), "claude");
        assert_eq!(pick("/usr/local/bin/codex", &["resume", "--last"]), "codex");
        assert_eq!(
            pick("node", &["--no-warnings", "/opt/x/gemini.js"]),
            "gemini"
        );
        assert_eq!(pick("bash", &["-l"]), "shell");
        assert_eq!(pick("python3.11", &[]), "python");
        assert_eq!(pick("claude --continue", &[]), "claude");
        assert_eq!(pick("vim", &[]), "generic");
        assert_eq!(pick("pythonista", &[]), "generic");
        assert_eq!(
            pick("python3", &["/t/fake-agent.py", "--log", "x"]),
            "python"
        );
        assert_eq!(pick("python3", &["-u", "/t/claude.py"]), "claude");
        assert_eq!(p.resolve(Some("gemini"), "bash", &[]).name, "gemini");
        assert_eq!(p.resolve(Some("nosuch"), "bash", &[]).name, "shell");
    }

    #[test]
    fn user_files_replace_and_add() {
        let dir = std::env::temp_dir().join(format!("telepty-prof-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("mine.toml"), "commands = [\"vim\"]\n").unwrap();
        std::fs::write(
            dir.join("shell.toml"),
            "commands = [\"bash\"]\n[timing]\nenter_gap_ms = 7\n",
        )
        .unwrap();
        let p = Profiles::load(&dir).unwrap();
        assert_eq!(p.resolve(None, "vim", &[]).name, "mine");
        assert_eq!(
            p.resolve(None, "bash", &[]).enter_gap,
            Duration::from_millis(7)
        );
        assert_eq!(p.resolve(None, "zsh", &[]).name, "generic");
        std::fs::write(dir.join("bad.toml"), "[screen]\nbusy = \"(\"\n").unwrap();
        let e = Profiles::load(&dir).unwrap_err().to_string();
        assert!(e.contains("bad.toml") && e.contains("screen.busy"), "{e}");
        std::fs::write(dir.join("bad.toml"), "colour = 1\n").unwrap();
        let e = Profiles::load(&dir).unwrap_err().to_string();
        assert!(e.contains("bad.toml") && e.contains("colour"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
