//! Which client serves a session argument: the local daemon (started on first use) or the
//! daemon named by `id@host`. Shared by the CLI and the MCP server so both resolve targets
//! the same way.

use std::sync::{Arc, OnceLock};

use futures_util::future::join_all;
use serde_json::Value;
use tokio::sync::OnceCell;

use super::health::PeerHealth;
use super::peers::{self as peer_config, PEER_CONNECT_TIMEOUT};
use super::{
    Client, ClientEnv, ClientError, Peer, Target, ensure_daemon, load_peers, resolve_target,
};

/// The label of this machine's daemon in multi-host output.
pub const LOCAL_HOST: &str = "local";

/// Why a target could not be served.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The argument itself is wrong (empty id, bad `@host`, a peer's bad URL): a usage error.
    /// No spec: the message is about something else (a peer), said as is.
    #[error("{}", match spec.as_str() {
        "" => why.clone(),
        spec => format!("invalid target {spec:?}: {why}"),
    })]
    Invalid { spec: String, why: String },
    /// The local daemon could not be reached or started.
    #[error("{0}")]
    Daemon(ClientError),
    /// `id@host`: that host does not answer (within 2 s).
    #[error("{target}: {error}")]
    Unreachable { target: String, error: ClientError },
    /// A bare id that several hosts hold.
    #[error(
        "session {spec:?} exists on several hosts ({}); name one, e.g. {example}",
        hosts.join(", ")
    )]
    Ambiguous {
        spec: String,
        hosts: Vec<String>,
        example: String,
    },
}

/// One daemon of a multi-host command.
#[derive(Clone)]
pub struct Host {
    /// `local` or the peer's name
    pub label: String,
    pub client: Client,
    pub local: bool,
    /// What a peer may take in all for a list, a lookup or a bus connection.
    pub deadline: std::time::Duration,
    /// Where a list or lookup's outcome is remembered for the next commands (`None`: not
    /// remembered, e.g. by the dashboard, which keeps its own).
    pub health: Option<Arc<PeerHealth>>,
}

impl Host {
    fn remember<T>(&self, answer: &Result<T, ClientError>) {
        if let Some(h) = &self.health {
            h.record(self.client.addr(), answer);
        }
    }

    /// `id` for the local host, `id@peer` for a peer.
    pub fn address(&self, id: &str) -> String {
        if self.local {
            id.to_string()
        } else {
            format!("{id}@{}", self.label)
        }
    }

    /// `GET /api/sessions`; a peer gets its [`Host::deadline`] for all of it.
    pub async fn sessions(&self) -> Result<Vec<Value>, ClientError> {
        let list = async {
            if !self.local {
                peer_config::probe(self.client.addr(), PEER_CONNECT_TIMEOUT).await?;
            }
            self.client.list_sessions().await
        };
        let list = if self.local {
            list.await?
        } else {
            let answer =
                peer_config::within_deadline(self.client.addr(), self.deadline, list).await;
            self.remember(&answer);
            answer?
        };
        match list {
            Value::Array(a) => Ok(a),
            _ => Err(ClientError::BadResponse {
                addr: self.client.addr().authority(),
                reason: "the daemon did not return a session array".into(),
            }),
        }
    }
}

/// Targets that live on the same daemon, so one request can serve them all.
pub struct TargetGroup {
    pub client: Client,
    pub targets: Vec<Target>,
}

/// Per-process connection state: the client environment, the local daemon client (started on
/// first use, once) and the peers (read on the first `@host`). Shared by reference: the caches
/// are once-cells, so concurrent callers (the MCP server's tools) never wait on a lock held
/// across a probe; the first caller of [`Connector::local`] or [`Connector::peers`] does the
/// work and the others wait for that result only.
pub struct Connector {
    pub env: ClientEnv,
    base: OnceLock<Client>,
    ensured: OnceCell<Client>,
    peers: OnceCell<Vec<Peer>>,
    health: OnceLock<Arc<PeerHealth>>,
}

impl Connector {
    pub fn new(env: ClientEnv) -> Connector {
        Connector {
            env,
            base: OnceLock::new(),
            ensured: OnceCell::new(),
            peers: OnceCell::new(),
            health: OnceLock::new(),
        }
    }

    /// The daemon chosen by the environment, without starting anything.
    pub fn local_client(&self) -> Result<Client, ClientError> {
        if let Some(c) = self.ensured.get().or(self.base.get()) {
            return Ok(c.clone());
        }
        let c = Client::new(self.env.local_addr()?);
        Ok(self.base.get_or_init(|| c).clone())
    }

    /// The daemon chosen by the environment, started first if it is local and not running.
    pub async fn local(&self) -> Result<Client, ClientError> {
        self.ensured
            .get_or_try_init(|| async {
                let mut c = self.local_client()?;
                ensure_daemon(&mut c).await?;
                Ok(c)
            })
            .await
            .cloned()
    }

    /// The configured (and discovered) peers, read once.
    pub async fn peers(&self) -> Vec<Peer> {
        self.peers
            .get_or_init(|| load_peers(&self.env))
            .await
            .clone()
    }

    /// A session argument (`id` or `id@host`) and a client of its daemon. Local targets get
    /// the daemon started on demand; remote ones never do.
    pub async fn target(&self, spec: &str) -> Result<(Client, Target), ConnectError> {
        let invalid = |why: String| ConnectError::Invalid {
            spec: spec.to_string(),
            why,
        };
        if spec.is_empty() {
            return Err(invalid("session id must not be empty".into()));
        }
        let peers = match super::split_target(spec).1 {
            Some(_) => self.peers().await,
            None => Vec::new(),
        };
        let target = resolve_target(spec, &self.env, &peers).map_err(|e| match e {
            // Not the argument's fault: the configuration file is broken.
            ClientError::Config(_) => ConnectError::Daemon(e),
            e => invalid(e.to_string()),
        })?;
        if target.is_remote() {
            let c = match self.local_client() {
                Ok(b) => b.with_addr(target.addr.clone()),
                Err(_) => Client::new(target.addr.clone()),
            };
            return Ok((c, target));
        }
        let c = self.local().await.map_err(ConnectError::Daemon)?;
        Ok((c, target))
    }

    /// Resolve every spec and group the targets by daemon, keeping the order of first
    /// appearance. Also returns, for each spec in order, its (group, index in group).
    pub async fn group_targets<S: AsRef<str>>(
        &self,
        specs: &[S],
    ) -> Result<(Vec<TargetGroup>, Vec<(usize, usize)>), ConnectError> {
        let mut groups: Vec<TargetGroup> = Vec::new();
        let mut order = Vec::with_capacity(specs.len());
        for spec in specs {
            let (client, target) = self.target(spec.as_ref()).await?;
            let gi = match groups.iter().position(|g| g.client.addr() == client.addr()) {
                Some(i) => i,
                None => {
                    groups.push(TargetGroup {
                        client,
                        targets: Vec::new(),
                    });
                    groups.len() - 1
                }
            };
            groups[gi].targets.push(target);
            order.push((gi, groups[gi].targets.len() - 1));
        }
        Ok((groups, order))
    }

    /// This machine's daemon (started on demand) and one client per peer.
    pub async fn hosts(&self) -> Result<Vec<Host>, ConnectError> {
        let peers = self.peers().await;
        let local = self.local().await.map_err(ConnectError::Daemon)?;
        let deadline = self.env.peer_deadline();
        let mut hosts = vec![Host {
            label: LOCAL_HOST.to_string(),
            client: local.clone(),
            local: true,
            deadline,
            health: None,
        }];
        let health = self
            .health
            .get_or_init(|| Arc::new(PeerHealth::of_home()))
            .clone();
        for p in &peers {
            let addr = peer_config::peer_addr(p, &self.env).map_err(|e| ConnectError::Invalid {
                // No spec: the message is about the peer, not an argument.
                spec: String::new(),
                why: format!("peer {}: {e}", p.name),
            })?;
            hosts.push(Host {
                label: p.name.clone(),
                deadline: health.deadline(&addr, deadline),
                client: local.with_addr(addr),
                local: false,
                health: Some(health.clone()),
            });
        }
        Ok(hosts)
    }

    /// A session argument for an existing session. `id@host` goes to that host (a down host
    /// fails within 2 s). A bare id that this machine's daemon holds is that session, without
    /// waiting on any peer; otherwise the peers are asked at once, each within
    /// `peer_deadline_ms`: found on one → that peer, on several →
    /// [`ConnectError::Ambiguous`], on none → the local daemon (which says it is not found).
    pub async fn session_target(&self, spec: &str) -> Result<(Client, Target), ConnectError> {
        if spec.is_empty() || super::split_target(spec).1.is_some() {
            let (c, t) = self.target(spec).await?;
            if t.is_remote() {
                peer_config::probe(c.addr(), PEER_CONNECT_TIMEOUT)
                    .await
                    .map_err(|error| ConnectError::Unreachable {
                        target: t.label(),
                        error,
                    })?;
            }
            return Ok((c, t));
        }
        if self.peers().await.is_empty() {
            return self.target(spec).await;
        }
        let (local, target) = self.target(spec).await?;
        if local.session(spec).await.is_ok() {
            return Ok((local, target));
        }
        let hosts = self.hosts().await?;
        let peers: Vec<&Host> = hosts.iter().filter(|h| !h.local).collect();
        let lookups = peers.iter().map(|h| async move {
            let answer = peer_config::within_deadline(h.client.addr(), h.deadline, async move {
                peer_config::probe(h.client.addr(), PEER_CONNECT_TIMEOUT).await?;
                h.client.session(spec).await
            })
            .await;
            h.remember(&answer);
            answer
        });
        let answers = join_all(lookups).await;
        let found: Vec<&Host> = peers
            .iter()
            .zip(&answers)
            .filter(|(_, r)| r.is_ok())
            .map(|(h, _)| *h)
            .collect();
        match found.as_slice() {
            [] => Ok((local, target)),
            [only] => self.target(&only.address(spec)).await,
            many => Err(ConnectError::Ambiguous {
                spec: spec.to_string(),
                hosts: many.iter().map(|h| h.label.clone()).collect(),
                example: many[0].address(spec),
            }),
        }
    }
}
