//! `telepty attach`: interactive passthrough to a session, starting from a snapshot of its
//! screen. A detach key (default ctrl+]) returns to the shell and leaves the session running.

use std::io::IsTerminal;

use crate::wire::Frame;
use clap::Args;
use futures_util::{SinkExt, StreamExt};
use ratatui::crossterm::terminal;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

use super::Ctx;
use super::output::{self, Failure, OrFail};
use crate::client::{self, Client, Target};

#[derive(Args, Debug)]
#[command(
    after_help = "Example: telepty attach worker-1   (detach with ctrl+], the session keeps running)"
)]
pub struct AttachArgs {
    /// Session id (or alias), optionally id@host; without it, pick from a list
    pub target: Option<String>,
    /// Watch only: keystrokes are not sent and the session is not resized
    #[arg(long)]
    pub observe: bool,
    /// Key that detaches (ctrl+a … ctrl+z, ctrl+], ctrl+\, ctrl+^, ctrl+_)
    #[arg(long, default_value = "ctrl+]", value_name = "KEY")]
    pub detach_key: String,
}

/// The byte a ctrl+key chord produces.
pub fn detach_byte(spec: &str) -> Option<u8> {
    let key = spec.trim().to_ascii_lowercase();
    let c = key
        .strip_prefix("ctrl+")
        .or_else(|| key.strip_prefix("c-"))?;
    match c.as_bytes() {
        [b] if b.is_ascii_lowercase() => Some(b - b'a' + 1),
        [b'['] => Some(0x1b),
        [b'\\'] => Some(0x1c),
        [b']'] => Some(0x1d),
        [b'^'] => Some(0x1e),
        [b'_'] => Some(0x1f),
        _ => None,
    }
}

/// Restores cooked mode and the modes a session may have switched on, even on early return.
struct RawGuard;

impl RawGuard {
    fn enable() -> Result<RawGuard, Failure> {
        terminal::enable_raw_mode()
            .map_err(|e| Failure::new("attach failed", format!("cannot set raw mode: {e}")))?;
        Ok(RawGuard)
    }
}

impl Drop for RawGuard {
    fn drop(&mut self) {
        use std::io::Write;
        let _ = terminal::disable_raw_mode();
        // Leave the alternate screen, show the cursor, reset colours, paste and mouse modes and
        // application cursor keys, which the session's program may have turned on.
        let mut out = std::io::stdout();
        let _ = out.write_all(
            b"\x1b[?1049l\x1b[?25h\x1b[0m\x1b[?2004l\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1006l\x1b[?1l\x1b>\r\n",
        );
        let _ = out.flush();
    }
}

pub async fn attach(ctx: &mut Ctx, a: AttachArgs) -> Result<(), Failure> {
    let detach = detach_byte(&a.detach_key).ok_or_else(|| {
        Failure::usage(format!(
            "invalid --detach-key {:?} (use e.g. ctrl+] or ctrl+q)",
            a.detach_key
        ))
    })?;
    let spec = match a.target {
        Some(t) => t,
        None => pick(ctx).await?,
    };
    let (c, target) = ctx.session_target(&spec, "attach").await?;
    attach_session(&c, &target, a.observe, detach, &a.detach_key).await
}

/// Without a target: number the sessions and read a choice.
async fn pick(ctx: &mut Ctx) -> Result<String, Failure> {
    if !std::io::stdin().is_terminal() {
        return Err(Failure::usage(
            "attach needs a session id when stdin is not a terminal",
        ));
    }
    let c = ctx.local().await?;
    let list = c.list_sessions().await.or_fail("attach failed")?;
    let ids = super::output::session_ids(&list, false);
    if ids.is_empty() {
        return Err(Failure::new(
            "attach failed",
            "no sessions (start one with telepty spawn)",
        ));
    }
    for (i, id) in ids.iter().enumerate() {
        output::line(format!("{:>3}  {id}", i + 1));
    }
    eprint!("attach to [1-{}]: ", ids.len());
    let mut line = String::new();
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin());
    use tokio::io::AsyncBufReadExt;
    stdin
        .read_line(&mut line)
        .await
        .map_err(|e| Failure::new("attach failed", e))?;
    let n: usize = line
        .trim()
        .parse()
        .map_err(|_| Failure::usage(format!("not a number: {:?}", line.trim())))?;
    ids.get(n.wrapping_sub(1))
        .cloned()
        .ok_or_else(|| Failure::usage(format!("no session number {n}")))
}

/// This terminal's size as a `resize` frame.
fn resize_frame() -> Option<Message> {
    let (cols, rows) = terminal::size().ok()?;
    Some(Message::Text(Frame::Resize { cols, rows }.text().into()))
}

pub async fn attach_session(
    c: &Client,
    target: &Target,
    observe: bool,
    detach: u8,
    detach_name: &str,
) -> Result<(), Failure> {
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        return Err(Failure::usage(
            "attach needs a terminal on stdin and stdout",
        ));
    }
    // Resolve aliases first: the WebSocket path takes exact ids only, and an unknown id there
    // would create a phantom wrapped session.
    let info = c.session(&target.id).await.or_fail("attach failed")?;
    let id = super::output::s_or(&info, "id", &target.id).to_string();
    let path = format!(
        "/api/sessions/{}?snapshot=1&create=0",
        client::addr::encode_component(&id)
    );
    let ws = client::connect_ws(c.addr(), &path)
        .await
        .or_fail("attach failed")?;
    let (mut sink, mut stream) = ws.split();

    let mode = if observe { "observing" } else { "attached to" };
    eprint!(
        "[{mode} {} — detach with {detach_name}]\r\n",
        target.label()
    );
    let guard = RawGuard::enable()?;
    if !observe && let Some(m) = resize_frame() {
        let _ = sink.send(m).await;
    }
    let mut winch =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change()).ok();
    let mut stdin = tokio::io::stdin();
    let mut stdout = tokio::io::stdout();
    let mut buf = vec![0u8; 8192];
    let mut carry = Vec::new();
    let ended: Option<String> = loop {
        tokio::select! {
            n = stdin.read(&mut buf) => {
                let n = match n { Ok(0) | Err(_) => break None, Ok(n) => n };
                let bytes = &buf[..n];
                let (keep, quit) = match bytes.iter().position(|&b| b == detach) {
                    Some(i) => (&bytes[..i], true),
                    None => (bytes, false),
                };
                if !observe && !keep.is_empty() {
                    let data = crate::util::decode_utf8_stream(&mut carry, keep);
                    if !data.is_empty() {
                        let frame = Frame::Input { data }.text();
                        if sink.send(Message::Text(frame.into())).await.is_err() { break Some("connection lost".into()) }
                    }
                }
                if quit { break None }
            }
            msg = stream.next() => {
                match msg {
                    Some(Ok(Message::Text(t))) => {
                        if let Ok(Frame::Output { data } | Frame::Snapshot { data, .. }) = serde_json::from_str(&t) {
                            if stdout.write_all(data.as_bytes()).await.is_err() { break None }
                            let _ = stdout.flush().await;
                        }
                    }
                    Some(Ok(Message::Close(frame))) => {
                        break Some(frame.map(|f| f.reason.to_string()).filter(|r| !r.is_empty()).unwrap_or_else(|| "closed".into()));
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => break Some(format!("connection lost: {e}")),
                    None => break Some("connection lost".into()),
                }
            }
            _ = async { match winch.as_mut() { Some(w) => { w.recv().await; } None => std::future::pending().await } } => {
                if !observe && let Some(m) = resize_frame() {
                    let _ = sink.send(m).await;
                }
            }
        }
    };
    let _ = sink.close().await;
    drop(guard);
    match ended {
        None => eprintln!(
            "[detached from {} — the session keeps running]",
            target.label()
        ),
        Some(reason) => eprintln!("[{}: {reason}]", target.label()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn detach_keys() {
        assert_eq!(super::detach_byte("ctrl+]"), Some(0x1d));
        assert_eq!(super::detach_byte("Ctrl+Q"), Some(0x11));
        assert_eq!(super::detach_byte("ctrl+a"), Some(1));
        assert_eq!(super::detach_byte("ctrl+\\"), Some(0x1c));
        assert_eq!(super::detach_byte("q"), None);
        assert_eq!(super::detach_byte("ctrl+1"), None);
    }
}
