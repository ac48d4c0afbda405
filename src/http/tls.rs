//! HTTPS (`[http] tls_cert` and `tls_key`): [`Handshakes`] accepts TCP
//! connections and runs each TLS handshake in a task of its own, with a time
//! limit, so that a client that is slow to shake hands, or that speaks plain HTTP,
//! or fails, holds up no other and never stops the listener: its connection is
//! dropped (logged at debug) and the next one is served.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// Longest a client may take over its handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshakes under way at once; more connections wait in the kernel's backlog.
const MAX_HANDSHAKES: usize = 256;

/// Connections whose handshake is done, in the order they finish it.
#[derive(Debug)]
pub struct Handshakes {
    done: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    accepting: JoinHandle<()>,
    local: SocketAddr,
}

impl Handshakes {
    /// Starts accepting on `listener` with `config`.
    pub fn spawn(listener: TcpListener, config: Arc<ServerConfig>) -> std::io::Result<Handshakes> {
        let local = listener.local_addr()?;
        let (tx, done) = mpsc::channel(64);
        let accepting = tokio::spawn(accept_loop(listener, TlsAcceptor::from(config), tx));
        Ok(Handshakes {
            done,
            accepting,
            local,
        })
    }

    /// The next connection whose handshake is done.
    pub async fn next(&mut self) -> (TlsStream<TcpStream>, SocketAddr) {
        match self.done.recv().await {
            Some(c) => c,
            // The accepting task is gone (it only ends when aborted): accept no more.
            None => std::future::pending().await,
        }
    }

    /// The address listened on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

impl Drop for Handshakes {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

async fn accept_loop(
    mut listener: TcpListener,
    acceptor: TlsAcceptor,
    done: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let slots = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        // axum's accept retries errors (EMFILE: after a pause) and never fails.
        let (tcp, addr) = axum::serve::Listener::accept(&mut listener).await;
        let acceptor = acceptor.clone();
        let done = done.clone();
        tokio::spawn(async move {
            let shaken = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await;
            drop(slot);
            match shaken {
                Ok(Ok(tls)) => {
                    // Fails only once the server is gone.
                    let _ = done.send((tls, addr)).await;
                }
                Ok(Err(e)) => tracing::debug!(%addr, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%addr, "TLS handshake timed out"),
            }
        });
    }
}
