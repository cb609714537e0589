//! The hostile broker's listener: accepts connections for one scenario and
//! runs its script on each, until told to stop.

use super::HostileError;
use super::scenario::{self, ConnRecord, Scenario, Settings};
use super::session::{Observer, Session};
use crate::sync::StdArc;
use crate::tls::ServerTls;
use serde::Serialize;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinSet;

/// Connections served per scenario at most: a client in a reconnect loop
/// must not turn the run into an unbounded one.
pub const MAX_CONNECTIONS: usize = 50;

/// How long open connections get to finish once the client under test has
/// exited.
const GRACE: Duration = Duration::from_millis(500);

/// What the broker saw during one scenario.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ServerRecord {
    /// Every connection, in accept order.
    pub connections: Vec<ConnRecord>,
    /// Connections refused beyond [`MAX_CONNECTIONS`].
    pub over_limit: usize,
    /// Connections still open when the run ended (their records are lost).
    pub cut_short: usize,
}

impl ServerRecord {
    /// True when some connection got the scenario's misbehaviour.
    pub fn misbehaved(&self) -> bool {
        self.connections.iter().any(|c| c.misbehaved)
    }

    /// The protocol rules the client broke, over all connections.
    pub fn violations(&self) -> impl Iterator<Item = &crate::hostile::finding::Finding> {
        self.connections.iter().flat_map(|c| c.violations.iter())
    }
}

/// Binds the listener on `host:port` (port 0: any free port).
pub async fn bind(host: &str, port: u16) -> Result<(TcpListener, SocketAddr), HostileError> {
    let addr = format!("{host}:{port}");
    let listener = TcpListener::bind(&addr)
        .await
        .map_err(|source| HostileError::Bind {
            addr: addr.clone(),
            source,
        })?;
    let local = listener
        .local_addr()
        .map_err(|source| HostileError::Bind { addr, source })?;
    Ok((listener, local))
}

/// Serves `scenario` on `listener` until `stop` fires (or its sender is
/// dropped), then returns what happened; deliveries are reported to
/// `observer` as they happen.
pub async fn serve(
    listener: &TcpListener,
    tls: &ServerTls,
    scenario: Scenario,
    settings: &Settings,
    observer: StdArc<Observer>,
    mut stop: oneshot::Receiver<()>,
) -> ServerRecord {
    let mut record = ServerRecord::default();
    let mut tasks: JoinSet<ConnRecord> = JoinSet::new();
    let mut accepted = 0usize;
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accept = listener.accept() => {
                let Ok((tcp, _)) = accept else { continue };
                if accepted >= MAX_CONNECTIONS {
                    record.over_limit += 1;
                    continue;
                }
                let index = accepted;
                accepted += 1;
                let tls = tls.clone();
                let settings = settings.clone();
                let observer = observer.clone();
                tasks.spawn(async move {
                    match Session::accept(&tls, tcp, settings.step, observer).await {
                        Ok(session) => scenario::run(scenario, index, session, &settings).await,
                        Err(e) => ConnRecord::failed(index, e),
                    }
                });
            }
            Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                if let Ok(conn) = done {
                    record.connections.push(conn);
                }
            }
        }
    }
    let _ = tokio::time::timeout(GRACE, async {
        while let Some(done) = tasks.join_next().await {
            if let Ok(conn) = done {
                record.connections.push(conn);
            }
        }
    })
    .await;
    record.cut_short = tasks.len();
    tasks.abort_all();
    record.connections.sort_by_key(|c| c.index);
    record
}
