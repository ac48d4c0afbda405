//! Connections the server can cut, plain or TLS.
//!
//! A client that stops reading leaves hyper waiting for the socket to drain, with
//! the body no longer polled: ending the body cannot close such a connection. Every
//! accepted connection is therefore a [`Conn`] with a [`Hangup`] handle (handed to
//! the handlers as connection info): [`Hangup::hang_up`] makes the connection's next
//! read or write fail, which wakes hyper and ends the connection. The socket is then
//! closed with a reset (`SO_LINGER` 0), so that what the kernel still holds for the
//! client is dropped at once rather than kept until the client reads it.
//!
//! With `[http] tls_cert` and `tls_key` the [`Listener`] hands out connections
//! whose TLS handshake is done (see [`super::tls`]); the rest is the same.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use futures::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::rustls;

/// The TCP listener of the HTTP server; its connections are [`Conn`]s.
#[derive(Debug)]
pub struct Listener {
    inner: Accepting,
}

#[derive(Debug)]
enum Accepting {
    Plain(tokio::net::TcpListener),
    Tls(super::tls::Handshakes),
}

impl Listener {
    /// Wraps a bound listener: plain HTTP.
    pub fn new(inner: tokio::net::TcpListener) -> Listener {
        Listener {
            inner: Accepting::Plain(inner),
        }
    }

    /// Wraps a bound listener: HTTPS, each handshake done apart from the others.
    pub fn tls(
        inner: tokio::net::TcpListener,
        config: Arc<rustls::ServerConfig>,
    ) -> io::Result<Listener> {
        Ok(Listener {
            inner: Accepting::Tls(super::tls::Handshakes::spawn(inner, config)?),
        })
    }
}

impl axum::serve::Listener for Listener {
    type Io = Conn;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Conn, SocketAddr) {
        let (io, addr) = match &mut self.inner {
            // axum's accept retries errors (EMFILE: after a pause) and never fails.
            Accepting::Plain(l) => {
                let (io, addr) = axum::serve::Listener::accept(l).await;
                (Io::Plain(io), addr)
            }
            Accepting::Tls(h) => {
                let (io, addr) = h.next().await;
                (Io::Tls(Box::new(io)), addr)
            }
        };
        (
            Conn {
                io,
                hangup: Hangup::default(),
                reset: false,
            },
            addr,
        )
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        match &self.inner {
            Accepting::Plain(l) => l.local_addr(),
            Accepting::Tls(h) => Ok(h.local_addr()),
        }
    }
}

#[derive(Debug, Default)]
struct Cut {
    cut: AtomicBool,
    read: AtomicWaker,
    write: AtomicWaker,
}

/// Cuts one connection (see the module docs). Cloned into the requests it serves.
#[derive(Debug, Clone, Default)]
pub struct Hangup(Arc<Cut>);

impl Hangup {
    /// Ends the connection: its next read or write fails, and it is closed with a
    /// reset.
    pub fn hang_up(&self) {
        self.0.cut.store(true, Ordering::Release);
        self.0.read.wake();
        self.0.write.wake();
    }

    /// True once [`Hangup::hang_up`] was called.
    pub fn is_cut(&self) -> bool {
        self.0.cut.load(Ordering::Acquire)
    }
}

impl Connected<IncomingStream<'_, Listener>> for Hangup {
    fn connect_info(stream: IncomingStream<'_, Listener>) -> Self {
        stream.io().hangup.clone()
    }
}

/// An accepted TCP connection that its [`Hangup`] can cut.
#[derive(Debug)]
pub struct Conn {
    io: Io,
    hangup: Hangup,
    reset: bool,
}

/// The byte stream of a [`Conn`].
#[derive(Debug)]
enum Io {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl Io {
    fn tcp(&self) -> &TcpStream {
        match self {
            Io::Plain(s) => s,
            Io::Tls(s) => s.get_ref().0,
        }
    }
}

/// Calls `$method` on the stream under an [`Io`].
macro_rules! delegate {
    ($self:ident, $method:ident ( $($arg:expr),* )) => {
        match $self.get_mut() {
            Io::Plain(s) => Pin::new(s).$method($($arg),*),
            Io::Tls(s) => Pin::new(s.as_mut()).$method($($arg),*),
        }
    };
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        delegate!(self, poll_read(cx, buf))
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Io::Plain(s) => s.is_write_vectored(),
            Io::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, poll_shutdown(cx))
    }
}

impl Conn {
    /// The error to return once the connection is cut (None: carry on). Registers
    /// the task first, so that a cut between the check and the I/O still wakes it.
    fn cut(&mut self, waker: fn(&Cut) -> &AtomicWaker, cx: &Context<'_>) -> Option<io::Error> {
        waker(&self.hangup.0).register(cx.waker());
        if !self.hangup.is_cut() {
            return None;
        }
        if !self.reset {
            self.reset = true;
            // A failure only means a FIN instead of a reset.
            let _ = socket2::SockRef::from(self.io.tcp()).set_linger(Some(Duration::ZERO));
        }
        Some(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "connection cut by the server",
        ))
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(e) = self.cut(|c| &c.read, cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Some(e) = self.cut(|c| &c.write, cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if let Some(e) = self.cut(|c| &c.write, cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    /// Vectored like the socket: hyper then queues body chunks instead of copying
    /// them into one buffer per connection.
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(e) = self.cut(|c| &c.write, cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(e) = self.cut(|c| &c.write, cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
