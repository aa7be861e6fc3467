//! Named keys (API.md §17 "Keys") and their byte sequences.

/// Every accepted name, for `valid_keys` in the UNKNOWN_KEY error and for completion.
pub fn valid_keys() -> Vec<String> {
    let mut v: Vec<String> = (b'a'..=b'z')
        .map(|c| format!("ctrl+{}", c as char))
        .collect();
    const NAMED: &str = "enter return tab shift+tab escape esc backspace delete insert up down \
                         right left home end pageup pagedown ctrl+left ctrl+right";
    v.extend(NAMED.split_whitespace().map(String::from));
    v.extend((1..=12).map(|n| format!("f{n}")));
    v
}

/// Bytes for one key name (case-insensitive); arrows and home/end follow DECCKM.
pub fn key_bytes(name: &str, app_cursor: bool) -> Option<Vec<u8>> {
    let n = name.trim().to_ascii_lowercase();
    if let Some(c) = n.strip_prefix("ctrl+")
        && let &[b @ b'a'..=b'z'] = c.as_bytes()
    {
        return Some(vec![b - b'a' + 1]);
    }
    let arrow = |c: u8| {
        if app_cursor {
            vec![0x1b, b'O', c]
        } else {
            vec![0x1b, b'[', c]
        }
    };
    let s: &[u8] = match n.as_str() {
        "enter" | "return" => b"\r",
        "tab" => b"\t",
        "shift+tab" => b"\x1b[Z",
        "escape" | "esc" => b"\x1b",
        "backspace" => b"\x7f",
        "delete" => b"\x1b[3~",
        "insert" => b"\x1b[2~",
        "up" => return Some(arrow(b'A')),
        "down" => return Some(arrow(b'B')),
        "right" => return Some(arrow(b'C')),
        "left" => return Some(arrow(b'D')),
        "home" => return Some(arrow(b'H')),
        "end" => return Some(arrow(b'F')),
        "pageup" => b"\x1b[5~",
        "pagedown" => b"\x1b[6~",
        "f1" => b"\x1bOP",
        "f2" => b"\x1bOQ",
        "f3" => b"\x1bOR",
        "f4" => b"\x1bOS",
        "f5" => b"\x1b[15~",
        "f6" => b"\x1b[17~",
        "f7" => b"\x1b[18~",
        "f8" => b"\x1b[19~",
        "f9" => b"\x1b[20~",
        "f10" => b"\x1b[21~",
        "f11" => b"\x1b[23~",
        "f12" => b"\x1b[24~",
        "ctrl+left" => b"\x1b[1;5D",
        "ctrl+right" => b"\x1b[1;5C",
        _ => return None,
    };
    Some(s.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        assert_eq!(key_bytes("ctrl+c", false).unwrap(), vec![3]);
        assert_eq!(key_bytes("CTRL+A", false).unwrap(), vec![1]);
        assert_eq!(key_bytes("ctrl+z", false).unwrap(), vec![0x1a]);
        assert_eq!(key_bytes("Enter", false).unwrap(), b"\r");
        assert_eq!(key_bytes("up", false).unwrap(), b"\x1b[A");
        assert_eq!(key_bytes("up", true).unwrap(), b"\x1bOA");
        assert_eq!(key_bytes("end", true).unwrap(), b"\x1bOF");
        assert_eq!(key_bytes("f5", true).unwrap(), b"\x1b[15~");
        assert_eq!(key_bytes("ctrl+left", false).unwrap(), b"\x1b[1;5D");
        assert!(key_bytes("ctrl+1", false).is_none());
        assert!(key_bytes("hyper", false).is_none());
        for k in valid_keys() {
            assert!(key_bytes(&k, false).is_some(), "{k}");
        }
    }
}
