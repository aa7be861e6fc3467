//! Keyboard → bytes for the program in a pane (typing mode), and the prefix key.
//!
//! The encoding follows xterm: printable characters as UTF-8, `Enter` as `\r`, `Backspace` as
//! DEL (0x7f), ctrl+letter as C0 controls, alt+x as `ESC x`, cursor keys as `CSI`/`SS3`
//! depending on the program's application-cursor mode (DECCKM), modified special keys with the
//! `1;<m>` parameter (m = 1 + shift + 2·alt + 4·ctrl).

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// xterm's modifier parameter, or `None` when no modifier is held.
fn modifier_param(mods: KeyModifiers) -> Option<u8> {
    let held = |m: KeyModifiers| u8::from(mods.contains(m));
    let m =
        held(KeyModifiers::SHIFT) + 2 * held(KeyModifiers::ALT) + 4 * held(KeyModifiers::CONTROL);
    (m > 0).then_some(m + 1)
}

/// The C0 control for ctrl+`c`, if there is one.
fn ctrl_byte(c: char) -> Option<u8> {
    let c = c.to_ascii_lowercase();
    Some(match c {
        'a'..='z' => c as u8 - b'a' + 1,
        '@' | ' ' | '2' => 0,
        '[' | '3' => 0x1b,
        '\\' | '4' => 0x1c,
        ']' | '5' => 0x1d,
        '^' | '6' => 0x1e,
        '_' | '-' | '7' => 0x1f,
        '?' | '8' => 0x7f,
        _ => return None,
    })
}

/// Bytes a terminal would send for `ev`; `None` for key releases and keys with no encoding.
pub fn encode_key(ev: &KeyEvent, app_cursor: bool) -> Option<Vec<u8>> {
    if ev.kind == KeyEventKind::Release {
        return None;
    }
    let mods = ev.modifiers;
    let alt = mods.contains(KeyModifiers::ALT);
    let ctrl = mods.contains(KeyModifiers::CONTROL);
    let param = modifier_param(mods);
    // CSI <final> keys (arrows, home, end; F1-F4): SS3 <final> when unmodified and `ss3`.
    let final_key = |f: u8, ss3: bool| -> Vec<u8> {
        match param {
            Some(m) => format!("\x1b[1;{m}{}", f as char).into_bytes(),
            None if ss3 => vec![0x1b, b'O', f],
            None => vec![0x1b, b'[', f],
        }
    };
    // CSI <n> ~ keys: insert, delete, page up/down, F5+.
    let tilde_key = |n: u8| -> Vec<u8> {
        match param {
            Some(m) => format!("\x1b[{n};{m}~").into_bytes(),
            None => format!("\x1b[{n}~").into_bytes(),
        }
    };
    let with_alt = |mut v: Vec<u8>| -> Vec<u8> {
        if alt {
            v.insert(0, 0x1b);
        }
        v
    };
    let bytes = match ev.code {
        KeyCode::Char(c) => match ctrl_byte(c).filter(|_| ctrl) {
            Some(b) => with_alt(vec![b]),
            None => with_alt(c.to_string().into_bytes()),
        },
        KeyCode::Enter => with_alt(b"\r".to_vec()),
        KeyCode::Backspace => with_alt(if ctrl { vec![0x08] } else { vec![0x7f] }),
        KeyCode::Tab if mods.contains(KeyModifiers::SHIFT) => b"\x1b[Z".to_vec(),
        KeyCode::Tab => with_alt(b"\t".to_vec()),
        KeyCode::BackTab => b"\x1b[Z".to_vec(),
        KeyCode::Esc => with_alt(vec![0x1b]),
        KeyCode::Up => final_key(b'A', app_cursor),
        KeyCode::Down => final_key(b'B', app_cursor),
        KeyCode::Right => final_key(b'C', app_cursor),
        KeyCode::Left => final_key(b'D', app_cursor),
        KeyCode::Home => final_key(b'H', app_cursor),
        KeyCode::End => final_key(b'F', app_cursor),
        KeyCode::Insert => tilde_key(2),
        KeyCode::Delete => tilde_key(3),
        KeyCode::PageUp => tilde_key(5),
        KeyCode::PageDown => tilde_key(6),
        KeyCode::F(n @ 1..=4) => final_key(b'P' + (n - 1), true),
        KeyCode::F(n @ 5..=12) => {
            let code = [15u8, 17, 18, 19, 20, 21, 23, 24][(n - 5) as usize];
            tilde_key(code)
        }
        KeyCode::Null => vec![0],
        _ => return None,
    };
    Some(bytes)
}

/// A pasted text as the program expects it: wrapped in `ESC[200~ … ESC[201~` when it enabled
/// bracketed paste (any end marker inside the text removed), else with newlines as `\r`, like a
/// terminal's own paste.
pub fn encode_paste(text: &str, bracketed: bool) -> Vec<u8> {
    if bracketed {
        let clean = text.replace("\x1b[201~", "");
        let mut v = b"\x1b[200~".to_vec();
        v.extend_from_slice(clean.as_bytes());
        v.extend_from_slice(b"\x1b[201~");
        v
    } else {
        text.replace("\r\n", "\r").replace('\n', "\r").into_bytes()
    }
}

/// A key chord written as `ctrl+a`, `alt+x`, `f12`, `ctrl+space`, `ctrl+]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeySpec {
    pub code: KeyCode,
    pub ctrl: bool,
    pub alt: bool,
    label: String,
}

impl KeySpec {
    pub fn parse(s: &str) -> Result<KeySpec, String> {
        let norm = s.trim().to_ascii_lowercase();
        if norm.is_empty() {
            return Err("empty key".into());
        }
        let mut ctrl = false;
        let mut alt = false;
        let mut rest = norm.as_str();
        fn strip<'a>(s: &'a str, long: &str, short: &str) -> Option<&'a str> {
            s.strip_prefix(long).or_else(|| s.strip_prefix(short))
        }
        loop {
            if let Some(r) = strip(rest, "ctrl+", "c-") {
                ctrl = true;
                rest = r;
            } else if let Some(r) = strip(rest, "alt+", "m-") {
                alt = true;
                rest = r;
            } else {
                break;
            }
        }
        let code = match rest {
            "space" => KeyCode::Char(' '),
            "tab" => KeyCode::Tab,
            "esc" | "escape" => KeyCode::Esc,
            "enter" | "return" => KeyCode::Enter,
            r if r.starts_with('f')
                && r.len() > 1
                && r[1..].parse::<u8>().is_ok_and(|n| (1..=12).contains(&n)) =>
            {
                KeyCode::F(r[1..].parse().unwrap_or(1))
            }
            r if r.chars().count() == 1 => KeyCode::Char(r.chars().next().unwrap_or('a')),
            _ => {
                return Err(format!(
                    "unknown key {s:?} (try ctrl+a, ctrl+b, alt+x, f12)"
                ));
            }
        };
        if !ctrl && !alt && matches!(code, KeyCode::Char(_)) {
            return Err(format!("prefix key {s:?} needs ctrl or alt"));
        }
        Ok(KeySpec {
            code,
            ctrl,
            alt,
            label: norm,
        })
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn matches(&self, ev: &KeyEvent) -> bool {
        if ev.kind == KeyEventKind::Release {
            return false;
        }
        let ctrl = ev.modifiers.contains(KeyModifiers::CONTROL);
        let alt = ev.modifiers.contains(KeyModifiers::ALT);
        if ctrl != self.ctrl || alt != self.alt {
            return false;
        }
        match (ev.code, self.code) {
            (KeyCode::Char(a), KeyCode::Char(b)) => a.eq_ignore_ascii_case(&b),
            (a, b) => a == b,
        }
    }

    /// The bytes of the key itself (sent through when the prefix is pressed twice).
    pub fn bytes(&self, app_cursor: bool) -> Vec<u8> {
        let mut mods = KeyModifiers::empty();
        mods.set(KeyModifiers::CONTROL, self.ctrl);
        mods.set(KeyModifiers::ALT, self.alt);
        encode_key(&KeyEvent::new(self.code, mods), app_cursor).unwrap_or_default()
    }
}

impl Default for KeySpec {
    fn default() -> Self {
        KeySpec {
            code: KeyCode::Char('a'),
            ctrl: true,
            alt: false,
            label: "ctrl+a".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode, mods: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, mods)
    }
    fn enc(code: KeyCode, mods: KeyModifiers) -> Vec<u8> {
        encode_key(&key(code, mods), false).unwrap()
    }
    const N: KeyModifiers = KeyModifiers::NONE;

    #[test]
    fn printable_and_utf8() {
        assert_eq!(enc(KeyCode::Char('a'), N), b"a");
        assert_eq!(enc(KeyCode::Char('A'), KeyModifiers::SHIFT), b"A");
        assert_eq!(enc(KeyCode::Char('é'), N), "é".as_bytes());
        assert_eq!(enc(KeyCode::Char('日'), N), "日".as_bytes());
        assert_eq!(enc(KeyCode::Char(' '), N), b" ");
    }

    #[test]
    fn control_keys() {
        assert_eq!(enc(KeyCode::Enter, N), b"\r");
        assert_eq!(enc(KeyCode::Backspace, N), b"\x7f");
        assert_eq!(enc(KeyCode::Backspace, KeyModifiers::CONTROL), b"\x08");
        assert_eq!(enc(KeyCode::Tab, N), b"\t");
        assert_eq!(enc(KeyCode::BackTab, KeyModifiers::SHIFT), b"\x1b[Z");
        assert_eq!(enc(KeyCode::Esc, N), b"\x1b");
        assert_eq!(enc(KeyCode::Delete, N), b"\x1b[3~");
        assert_eq!(enc(KeyCode::Insert, N), b"\x1b[2~");
        assert_eq!(enc(KeyCode::PageUp, N), b"\x1b[5~");
        assert_eq!(enc(KeyCode::PageDown, N), b"\x1b[6~");
    }

    #[test]
    fn ctrl_and_alt() {
        assert_eq!(enc(KeyCode::Char('c'), KeyModifiers::CONTROL), vec![3]);
        assert_eq!(enc(KeyCode::Char('a'), KeyModifiers::CONTROL), vec![1]);
        assert_eq!(
            enc(
                KeyCode::Char('Z'),
                KeyModifiers::CONTROL | KeyModifiers::SHIFT
            ),
            vec![26]
        );
        assert_eq!(enc(KeyCode::Char('['), KeyModifiers::CONTROL), vec![0x1b]);
        assert_eq!(enc(KeyCode::Char(' '), KeyModifiers::CONTROL), vec![0]);
        assert_eq!(enc(KeyCode::Char('x'), KeyModifiers::ALT), b"\x1bx");
        assert_eq!(
            enc(
                KeyCode::Char('b'),
                KeyModifiers::ALT | KeyModifiers::CONTROL
            ),
            b"\x1b\x02"
        );
        assert_eq!(enc(KeyCode::Enter, KeyModifiers::ALT), b"\x1b\r");
    }

    #[test]
    fn cursor_keys_follow_decckm() {
        assert_eq!(enc(KeyCode::Up, N), b"\x1b[A");
        assert_eq!(enc(KeyCode::Left, N), b"\x1b[D");
        assert_eq!(enc(KeyCode::Home, N), b"\x1b[H");
        assert_eq!(enc(KeyCode::End, N), b"\x1b[F");
        let app = |c| encode_key(&key(c, N), true).unwrap();
        assert_eq!(app(KeyCode::Up), b"\x1bOA");
        assert_eq!(app(KeyCode::Down), b"\x1bOB");
        assert_eq!(app(KeyCode::Right), b"\x1bOC");
        assert_eq!(app(KeyCode::Home), b"\x1bOH");
        assert_eq!(app(KeyCode::End), b"\x1bOF");
        // Modified cursor keys use CSI 1;m whatever the mode.
        assert_eq!(enc(KeyCode::Right, KeyModifiers::CONTROL), b"\x1b[1;5C");
        assert_eq!(
            encode_key(&key(KeyCode::Up, KeyModifiers::SHIFT), true).unwrap(),
            b"\x1b[1;2A"
        );
    }

    #[test]
    fn function_keys() {
        assert_eq!(enc(KeyCode::F(1), N), b"\x1bOP");
        assert_eq!(enc(KeyCode::F(4), N), b"\x1bOS");
        assert_eq!(enc(KeyCode::F(5), N), b"\x1b[15~");
        assert_eq!(enc(KeyCode::F(6), N), b"\x1b[17~");
        assert_eq!(enc(KeyCode::F(11), N), b"\x1b[23~");
        assert_eq!(enc(KeyCode::F(12), N), b"\x1b[24~");
        assert_eq!(enc(KeyCode::F(1), KeyModifiers::SHIFT), b"\x1b[1;2P");
        assert_eq!(enc(KeyCode::F(5), KeyModifiers::CONTROL), b"\x1b[15;5~");
        assert!(encode_key(&key(KeyCode::F(20), N), false).is_none());
    }

    #[test]
    fn releases_are_ignored() {
        let mut ev = key(KeyCode::Char('a'), N);
        ev.kind = KeyEventKind::Release;
        assert!(encode_key(&ev, false).is_none());
    }

    #[test]
    fn paste() {
        assert_eq!(encode_paste("a\nb", true), b"\x1b[200~a\nb\x1b[201~");
        assert_eq!(encode_paste("x\x1b[201~y", true), b"\x1b[200~xy\x1b[201~");
        assert_eq!(encode_paste("a\nb\r\nc", false), b"a\rb\rc");
    }

    #[test]
    fn prefix_spec() {
        let p = KeySpec::parse("ctrl+a").unwrap();
        assert!(p.matches(&key(KeyCode::Char('a'), KeyModifiers::CONTROL)));
        assert!(!p.matches(&key(KeyCode::Char('a'), N)));
        assert!(!p.matches(&key(KeyCode::Char('b'), KeyModifiers::CONTROL)));
        assert_eq!(p.bytes(false), vec![1]);
        let b = KeySpec::parse("C-b").unwrap();
        assert_eq!(b.bytes(false), vec![2]);
        assert_eq!(KeySpec::parse("f12").unwrap().code, KeyCode::F(12));
        assert_eq!(KeySpec::parse("ctrl+space").unwrap().bytes(false), vec![0]);
        assert!(KeySpec::parse("a").is_err());
        assert!(KeySpec::parse("ctrl+hyper").is_err());
        assert_eq!(KeySpec::default().label(), "ctrl+a");
    }
}
