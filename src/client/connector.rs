//! Which client serves a session argument: the local daemon (started on first use) or the
//! daemon named by `id@host`. Shared by the CLI and the MCP server so both resolve targets
//! the same way.

use super::{
    Client, ClientEnv, ClientError, Peer, Target, ensure_daemon, load_peers, resolve_target,
};
use crate::config::Paths;

/// Why a target could not be served.
#[derive(Debug)]
pub enum ConnectError {
    /// The argument itself is wrong (empty id, bad `@host`): a usage error.
    Invalid { spec: String, why: String },
    /// The local daemon could not be reached or started.
    Daemon(ClientError),
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Invalid { spec, why } if spec.is_empty() => write!(f, "{why}"),
            ConnectError::Invalid { spec, why } => write!(f, "invalid target {spec:?}: {why}"),
            ConnectError::Daemon(e) => write!(f, "{e}"),
        }
    }
}

/// Targets that live on the same daemon, so one request can serve them all.
pub struct TargetGroup {
    pub client: Client,
    pub targets: Vec<Target>,
}

/// Per-process connection state: the client environment, the local daemon client (started on
/// first use, once) and the peers (read on the first `@host`).
pub struct Connector {
    pub env: ClientEnv,
    local: Option<Client>,
    ensured: bool,
    peers: Option<Vec<Peer>>,
}

impl Connector {
    pub fn new(env: ClientEnv) -> Connector {
        Connector {
            env,
            local: None,
            ensured: false,
            peers: None,
        }
    }

    /// The daemon chosen by the environment, without starting anything.
    pub fn local_client(&mut self) -> Result<Client, ClientError> {
        if let Some(c) = &self.local {
            return Ok(c.clone());
        }
        let c = Client::new(self.env.local_addr()?);
        self.local = Some(c.clone());
        Ok(c)
    }

    /// The daemon chosen by the environment, started first if it is local and not running.
    pub async fn local(&mut self) -> Result<Client, ClientError> {
        let mut c = self.local_client()?;
        if !self.ensured {
            ensure_daemon(&mut c).await?;
            self.ensured = true;
            self.local = Some(c.clone());
        }
        Ok(c)
    }

    /// The configured (and discovered) peers, read once.
    pub fn peers(&mut self) -> Vec<Peer> {
        self.peers
            .get_or_insert_with(|| load_peers(&Paths::from_env()))
            .clone()
    }

    /// A session argument (`id` or `id@host`) and a client of its daemon. Local targets get
    /// the daemon started on demand; remote ones never do.
    pub async fn target(&mut self, spec: &str) -> Result<(Client, Target), ConnectError> {
        let invalid = |why: String| ConnectError::Invalid {
            spec: spec.to_string(),
            why,
        };
        if spec.is_empty() {
            return Err(invalid("session id must not be empty".into()));
        }
        let peers = match super::split_target(spec).1 {
            Some(_) => self.peers(),
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
        &mut self,
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
}
