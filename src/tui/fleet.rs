//! The fleet: every peer's sessions in the same grid as this dashboard's own.
//!
//! The peers are the CLI's (config.toml `[[peers]]`, Tailscale discovery when on). A peer's
//! sessions show as `id@peer` and are mirrored like a client-mode dashboard's (`remote.rs`:
//! one WebSocket per shown pane); actions on them go to that peer's daemon, keyed where a
//! retry could type twice.
//!
//! Each peer has a poller in the background: its session list when its bus reports a session
//! change or (re)connects (or every [`RELIST`]), otherwise a small health request every [`HEARTBEAT`], each
//! within the peer deadline (`peer_deadline_ms`). An idle peer costs a health request per
//! heartbeat, not a list per second. A peer that does not answer is marked down — its last
//! sessions stay on screen with a `host down` badge — and is retried with a growing pause, so a
//! dead or hung peer never holds the dashboard, a local pane or a local action.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::Value;
use tokio::sync::{Notify, mpsc};

use super::backend::{self, Backend, Op, Outcome, Split};
use super::info::SessionInfo;
use super::msg::AppMsg;
use crate::client::{Client, ClientEnv, Host, peers, split_target};

/// How often an up peer is asked whether it still answers.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// A full list at least this often besides the bus's pokes (a list of 16 sessions is ~25 kB:
/// every 30 s would be most of an idle peer's traffic).
const RELIST: Duration = Duration::from_secs(300);
/// The longest pause between two attempts at a down peer.
const RETRY_MAX: Duration = Duration::from_secs(10);

/// A peer's daemon and what wakes its poller.
pub struct PeerLink {
    pub host: Host,
    /// Wakes the poller for a fresh list (a bus event, an action on one of its sessions).
    pub poke: Arc<Notify>,
}

impl PeerLink {
    pub fn name(&self) -> &str {
        &self.host.label
    }
}

/// This dashboard's daemon and its peers.
#[derive(Clone)]
pub struct Fleet {
    pub local: Backend,
    pub peers: Arc<Vec<PeerLink>>,
}

impl Fleet {
    pub fn alone(local: Backend) -> Fleet {
        Fleet {
            local,
            peers: Arc::new(Vec::new()),
        }
    }

    /// `local` and every peer the CLI knows. A peer whose address cannot be used is left out,
    /// with a line saying why.
    pub async fn with_peers(local: Backend) -> (Fleet, Vec<String>) {
        let env = ClientEnv::from_env();
        let deadline = env.peer_deadline();
        let mut links = Vec::new();
        let mut problems = Vec::new();
        for p in peers::load(&env).await {
            match peers::peer_addr(&p, &env) {
                Ok(addr) => links.push(PeerLink {
                    host: Host {
                        label: p.name.clone(),
                        client: Client::new(addr),
                        local: false,
                        deadline,
                        health: None,
                    },
                    poke: Arc::new(Notify::new()),
                }),
                Err(e) => problems.push(format!("peer {}: {e}", p.name)),
            }
        }
        let fleet = Fleet {
            local,
            peers: Arc::new(links),
        };
        (fleet, problems)
    }

    /// Peer names are case-insensitive, as in `id@host` on the command line.
    pub fn peer(&self, name: &str) -> Option<&PeerLink> {
        self.peers
            .iter()
            .find(|l| l.name().eq_ignore_ascii_case(name))
    }

    /// Where `id` lives: this dashboard's daemon (`None`) or a peer, and the id it knows.
    fn locate<'a>(&self, id: &'a str) -> Result<(Option<&PeerLink>, &'a str), String> {
        match split_target(id) {
            (bare, None) => Ok((None, bare)),
            (bare, Some(host)) => match self.peer(host) {
                Some(link) => Ok((Some(link), bare)),
                None => Err(format!(
                    "{id}: no peer named {host:?} (see telepty peers list)"
                )),
            },
        }
    }

    pub async fn run(&self, mut op: Op) -> Outcome {
        let link = match &mut op {
            Op::Broadcast { text } => return self.fanout("broadcast", None, text).await,
            Op::Multicast { ids, text } => return self.fanout("multicast", Some(ids), text).await,
            // This machine's own: lost sessions, its project file.
            Op::Resurrect { .. } | Op::Up { .. } => None,
            Op::Rename { id, new_id } => {
                let shown = id.clone();
                let link = match self.locate(id) {
                    Ok((link, bare)) => {
                        *id = bare.to_string();
                        link
                    }
                    Err(why) => return Outcome::err(why),
                };
                // `b@hostB` → `c` or `c@hostB`; a session cannot move to another machine.
                let name = link.map(PeerLink::name);
                match split_target(new_id) {
                    (_, None) => {}
                    (bare, Some(h)) if name.is_some_and(|n| n.eq_ignore_ascii_case(h)) => {
                        *new_id = bare.to_string();
                    }
                    (_, Some(h)) => {
                        let why = format!("rename {shown}: a session cannot move to {h}");
                        return Outcome::err(why);
                    }
                }
                link
            }
            Op::Inject { id, .. }
            | Op::Enter { id }
            | Op::Keys { id, .. }
            | Op::Kill { id }
            | Op::Spawn { id, .. } => match self.locate(id) {
                Ok((link, bare)) => {
                    *id = bare.to_string();
                    link
                }
                Err(why) => return Outcome::err(why),
            },
        };
        match link {
            None => self.local.run(op).await,
            Some(link) => {
                let out = backend::run_remote(&link.host.client, op, Some(link.name())).await;
                link.poke.notify_one();
                out
            }
        }
    }

    /// A broadcast (`ids` = `None`: every session of every machine) or a multicast, each
    /// daemon asked at once and every peer within its deadline. A peer that does not answer in
    /// time is reported as such: the text may still have been typed there.
    async fn fanout(&self, what: &str, ids: Option<&[String]>, text: &str) -> Outcome {
        let mut failed: Vec<(String, String)> = Vec::new();
        let mut local: Vec<String> = Vec::new();
        let mut remote: Vec<(&PeerLink, Vec<String>)> = match ids {
            None => self.peers.iter().map(|l| (l, Vec::new())).collect(),
            Some(_) => Vec::new(),
        };
        for id in ids.unwrap_or_default() {
            match self.locate(id) {
                Ok((None, bare)) => local.push(bare.to_string()),
                Ok((Some(link), bare)) => {
                    match remote.iter_mut().find(|(l, _)| l.name() == link.name()) {
                        Some((_, list)) => list.push(bare.to_string()),
                        None => remote.push((link, vec![bare.to_string()])),
                    }
                }
                Err(_) => failed.push((id.clone(), "UNKNOWN_HOST".into())),
            }
        }
        let ask_local = async {
            match ids {
                None => Some(self.local.fanout(None, text).await),
                Some(_) if local.is_empty() => None,
                Some(_) => Some(self.local.fanout(Some(&local), text).await),
            }
        };
        let ask_peers = join_all(remote.iter().map(|(link, list)| async move {
            let targets = ids.map(|_| list.as_slice());
            let deadline = link.host.deadline;
            let fut = backend::fanout_remote(&link.host.client, targets, text, Some(link.name()));
            let answer = tokio::time::timeout(deadline, fut)
                .await
                .unwrap_or_else(|_| {
                    Err(format!(
                        "no answer within {:.1} s, it may have been delivered",
                        deadline.as_secs_f64()
                    ))
                });
            link.poke.notify_one();
            answer
        }));
        let (local_answer, peer_answers) = tokio::join!(ask_local, ask_peers);
        let mut ok = Vec::new();
        let mut merge = |answer: Result<Split, String>, whom: Vec<String>| match answer {
            Ok((o, f)) => {
                ok.extend(o);
                failed.extend(f);
            }
            Err(e) => failed.extend(whom.into_iter().map(|id| (id, e.clone()))),
        };
        if let Some(answer) = local_answer {
            merge(answer, local.clone());
        }
        for ((link, list), answer) in remote.iter().zip(peer_answers) {
            let whom = match ids {
                None => vec![format!("*@{}", link.name())],
                Some(_) => list
                    .iter()
                    .map(|id| format!("{id}@{}", link.name()))
                    .collect(),
            };
            merge(answer, whom);
        }
        backend::summarize(what, &ok, &failed)
    }
}

/// What the grid knows of each peer: its last sessions and whether it answers.
#[derive(Default)]
pub struct PeerBoard {
    peers: Vec<PeerView>,
}

struct PeerView {
    name: String,
    sessions: Vec<SessionInfo>,
    /// Why its last request failed (`None`: up, or not asked yet).
    down: Option<String>,
}

impl PeerBoard {
    pub fn new(fleet: &Fleet) -> PeerBoard {
        let peers = fleet.peers.iter().map(|l| PeerView {
            name: l.name().to_string(),
            sessions: Vec::new(),
            down: None,
        });
        PeerBoard {
            peers: peers.collect(),
        }
    }

    /// A peer's answer: its sessions (`Some`), only that it answers (`None`), or why not.
    /// Returns the status line when the peer goes down or comes back.
    pub fn update(
        &mut self,
        name: &str,
        result: Result<Option<Vec<SessionInfo>>, String>,
    ) -> Option<(String, bool)> {
        let view = self.peers.iter_mut().find(|p| p.name == name)?;
        let was_down = view.down.is_some();
        match result {
            Ok(list) => {
                if let Some(list) = list {
                    view.sessions = list;
                }
                view.down = None;
                was_down.then(|| (format!("peer {name} answers again"), true))
            }
            Err(e) => {
                let line = (!was_down).then(|| (format!("peer {name} is down: {e}"), false));
                view.down = Some(e);
                line
            }
        }
    }

    /// Every peer's sessions in peer order; a down peer's last ones marked as such.
    pub fn sessions(&self) -> impl Iterator<Item = SessionInfo> + '_ {
        self.peers.iter().flat_map(|p| {
            p.sessions.iter().map(|s| SessionInfo {
                host_down: p.down.is_some(),
                ..s.clone()
            })
        })
    }

    /// (name, answers) of each peer, for the status bar.
    pub fn hosts(&self) -> Vec<(String, bool)> {
        self.peers
            .iter()
            .map(|p| (p.name.clone(), p.down.is_none()))
            .collect()
    }
}

/// Keep the loop told about a peer: its list when something changed there, its health
/// otherwise, retried with a growing pause while it is down.
pub async fn poll_peer(fleet: Fleet, index: usize, tx: mpsc::Sender<AppMsg>) {
    let Some(link) = fleet.peers.get(index) else {
        return;
    };
    let name = link.name().to_string();
    let mut listed: Option<Instant> = None;
    let mut relist = true;
    let mut pause = HEARTBEAT;
    loop {
        let stale = listed.is_none_or(|t| t.elapsed() >= RELIST);
        let result = if relist || stale {
            list_peer(&link.host).await.map(Some)
        } else {
            let h = &link.host;
            let probe = peers::within_deadline(h.client.addr(), h.deadline, async {
                h.client.health(h.deadline).await
            });
            probe.await.map(|_| None).map_err(|e| e.to_string())
        };
        match &result {
            Ok(Some(_)) => {
                listed = Some(Instant::now());
                relist = false;
                pause = HEARTBEAT;
            }
            Ok(None) => pause = HEARTBEAT,
            Err(_) => {
                // Back up: list it whole once it answers again.
                relist = true;
                pause = match pause >= HEARTBEAT {
                    true => Duration::from_secs(1),
                    false => (pause * 2).min(RETRY_MAX),
                };
            }
        }
        let msg = AppMsg::Peer {
            name: name.clone(),
            result,
        };
        if tx.send(msg).await.is_err() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = link.poke.notified() => relist = true,
        }
    }
}

async fn list_peer(host: &Host) -> Result<Vec<SessionInfo>, String> {
    let list = host.sessions().await.map_err(|e| e.to_string())?;
    let list = SessionInfo::list_from_json(&Value::Array(list));
    Ok(SessionInfo::at_peer(list, &host.label))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: &str) -> SessionInfo {
        SessionInfo {
            id: id.into(),
            kind: "spawned".into(),
            health: "CONNECTED".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_down_peer_keeps_its_last_sessions_marked() {
        let mut board = PeerBoard {
            peers: vec![PeerView {
                name: "hostB".into(),
                sessions: Vec::new(),
                down: None,
            }],
        };
        let list = SessionInfo::at_peer(vec![info("b1")], "hostB");
        assert_eq!(board.update("hostB", Ok(Some(list))), None);
        let shown: Vec<SessionInfo> = board.sessions().collect();
        assert_eq!(shown[0].id, "b1@hostB");
        assert_eq!(shown[0].daemon_id(), "b1");
        assert!(!shown[0].host_down);
        let (line, ok) = board.update("hostB", Err("timed out".into())).unwrap();
        assert!(line.contains("hostB is down: timed out") && !ok);
        assert_eq!(
            board.update("hostB", Err("again".into())),
            None,
            "said once"
        );
        let shown: Vec<SessionInfo> = board.sessions().collect();
        assert_eq!(shown.len(), 1);
        assert!(shown[0].host_down && !shown[0].live());
        assert_eq!(shown[0].badge().text(), "host down");
        // A health answer brings it back without a new list.
        let (line, ok) = board.update("hostB", Ok(None)).unwrap();
        assert!(line.contains("answers again") && ok);
        assert!(!board.sessions().next().unwrap().host_down);
        assert_eq!(board.hosts(), vec![("hostB".to_string(), true)]);
    }
}
