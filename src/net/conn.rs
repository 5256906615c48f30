//! The connection driver, generic over a protocol [`Session`] and over the byte stream: a
//! plain `TcpStream`, or a TLS stream whose handshake the listener has done.
//!
//! Owns: the read buffer, the write buffer, the idle timeout and graceful close.
//! Must not touch: commands or wire formats; the session decides what bytes mean.
//! Invariants: one read, then every complete request in the buffer is handled, then one write
//! of all the replies (pipelining without a syscall per reply). That write waits behind the
//! other connections the runtime has already woken ([`defer_replies`]). On shutdown the driver
//! stops reading; requests already read have been answered and flushed before it returns. A batch
//! whose replies pass `OUT_HIGH_WATER` is written in several parts (the session pauses), so a
//! client pipelining big gets cannot make the reply buffer grow without bound. A session that
//! answers [`Flow::Block`] (a blocking pop) is called again once its wake-up or deadline comes
//! ([`Session::waiting`]); meanwhile the driver keeps reading (buffering pipelined requests)
//! so that a disconnect or shutdown ends the wait at once. The driver does not read while a
//! write is pending (back-pressure), so a peer that never reads holds at most one batch of
//! replies here; a write making no progress for `limits.output_timeout` closes it. A session
//! with an inbox ([`Session::inbox`], a subscriber) is also woken while idle or blocked when
//! messages for it are pending: `process` then moves them to the output (the messages wait in
//! the session's bounded mailbox meanwhile, so a subscriber that does not read is closed by
//! the publisher side's limit, not buffered here; a write stalled on such a subscriber is
//! abandoned the moment its mailbox overflows, [`Session::closing`]).
//!
//! The driver is monomorphised per stream type: plain TCP pays nothing for TLS existing (no
//! boxing, no dynamic dispatch; its `flush` is a no-op that completes at its first poll, so no
//! timer is armed for it). A TLS stream may accept plaintext while still holding ciphertext the
//! socket did not take, so every batch ends with a flush, bounded like the writes.

use std::future::poll_fn;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::net::stop::Stop;
use crate::proto::{Flow, Session};
use crate::server::{Shared, Stats};

/// Buffers grow for big requests and replies; past this they are released after use so that
/// an idle connection does not pin megabytes.
const KEEP_CAPACITY: usize = 64 * 1024;
const READ_CHUNK: usize = 16 * 1024;
/// At shutdown, at most this much already-received input is still served.
const DRAIN_LIMIT: usize = 1024 * 1024;
/// The close (for TLS, a close_notify alert, then the TCP FIN) is abandoned after this long: a
/// peer that does not read cannot hold the connection open through it.
const CLOSE_LIMIT: Duration = Duration::from_secs(1);

/// Under load, replies wait until the connections that were ready at the same time have read
/// and handled their requests, then go out back to back, as redis writes its replies just
/// before it sleeps. A client spread over many connections then wakes once per burst of
/// replies instead of once per reply; each wake-up of a client thread on another core is paid
/// by the sender (an inter-processor interrupt), and at pipeline 1 that made the sending core's
/// cost per request vary by half from run to run.
///
/// The task wakes itself and returns `Pending` once: the runtime puts a task that woke itself
/// while running at the back of its run queue, behind the tasks already woken. Unlike
/// `tokio::task::yield_now` this does not wait for the runtime to poll for I/O first (an extra
/// `epoll_wait` per request when requests trickle in); with nothing else queued, the task is
/// polled again at once.
fn defer_replies() -> impl Future<Output = ()> {
    let mut requeued = false;
    poll_fn(move |cx| {
        if std::mem::replace(&mut requeued, true) {
            return Poll::Ready(());
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    })
}

/// Serves one connection until the peer closes, the session asks to close, the idle timeout
/// fires, or `stop` is signalled.
pub async fn run<T, S>(mut stream: T, mut session: S, shared: &Shared, stop: &Stop)
where
    T: AsyncRead + AsyncWrite + Unpin,
    S: Session,
{
    let mut input = BytesMut::with_capacity(READ_CHUNK);
    let mut out = BytesMut::with_capacity(READ_CHUNK);
    // One stop future for the connection's life: it registers its waker once.
    let mut stopped = pin!(stop.stopped());
    let mut limits = arc_swap::Cache::new(&shared.limits);
    loop {
        if input.capacity() - input.len() < READ_CHUNK / 2 {
            input.reserve(READ_CHUNK);
        }
        let (idle, stall) = {
            let limits = limits.load();
            (limits.idle_timeout, limits.output_timeout)
        };
        // Stop is checked before each read and raced against a read that has to wait; a read
        // that is ready goes first.
        // A session with an inbox (a subscriber) is also woken by messages for it; one that
        // has none waits on the socket alone, as before it existed.
        let inbox = session.inbox();
        let (n, closing) = if stop.is_stopped() {
            (drain_received(&mut stream, &mut input), true)
        } else {
            tokio::select! {
                biased;
                r = read_some(&mut stream, &mut input, idle) => match r {
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                        Stats::add(&shared.stats.closed_idle_timeout, 1);
                        break;
                    }
                    Ok(0) | Err(_) => break,
                    Ok(n) => (n, false),
                },
                () = &mut stopped => (drain_received(&mut stream, &mut input), true),
                () = notified(inbox), if inbox.is_some() => (0, false),
            }
        };
        Stats::add(&shared.stats.bytes_read, n as u64);
        let mut flow = serve(
            &mut stream,
            &mut session,
            &mut input,
            &mut out,
            shared,
            stall,
        )
        .await;
        // A blocking command (BLPOP, ...) waits for its wake-up, its deadline, shutdown or the
        // peer closing; more input is buffered meanwhile, served after it (as redis does).
        while flow == Flow::Block {
            let Some((notify, deadline)) = session.waiting() else {
                break;
            };
            let inbox = session.inbox();
            let gone = tokio::select! {
                biased;
                () = &mut stopped => true,
                () = notify.notified() => false,
                () = notified(inbox), if inbox.is_some() => false,
                () = sleep_until(deadline) => false,
                r = stream.read_buf(&mut input) => matches!(r, Ok(0) | Err(_)),
            };
            if gone {
                flow = Flow::Close;
                break;
            }
            if over_input_limit(&input, shared) {
                flow = Flow::Close;
                break;
            }
            flow = serve(
                &mut stream,
                &mut session,
                &mut input,
                &mut out,
                shared,
                stall,
            )
            .await;
        }
        if flow == Flow::Close || closing {
            break;
        }
        if input.is_empty() && input.capacity() > KEEP_CAPACITY {
            input = BytesMut::with_capacity(READ_CHUNK);
        }
    }
    let _ = ready_or_within(stream.shutdown(), CLOSE_LIMIT).await;
}

/// Writes all of `out`, then flushes. A write that makes no progress for
/// `limits.output_timeout` (the peer stopped reading and the socket buffers are full) fails
/// and is counted, so a client that pipelines and never reads is closed instead of pinning its
/// batch forever; so does a flush that does not finish in that time.
async fn write_out<T: AsyncWrite + Unpin>(
    stream: &mut T,
    out: &[u8],
    stall: Duration,
    shared: &Shared,
) -> std::io::Result<()> {
    // Most batches fit the socket buffer: one write attempt first, with no timer (setting up a
    // timeout reads the clock and clones the runtime handle).
    let mut written = {
        let mut first = pin!(stream.write(out));
        match poll_fn(|cx| Poll::Ready(first.as_mut().poll(cx))).await {
            Poll::Ready(Ok(0)) => return Err(std::io::ErrorKind::WriteZero.into()),
            Poll::Ready(Ok(n)) => n,
            Poll::Ready(Err(e)) => return Err(e),
            Poll::Pending => 0,
        }
    };
    if stall.is_zero() {
        stream.write_all(&out[written..]).await?;
        return stream.flush().await;
    }
    while written < out.len() {
        // `timeout` polls the write first: a write that completes at once arms no timer.
        match tokio::time::timeout(stall, stream.write(&out[written..])).await {
            Ok(Ok(0)) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(Ok(n)) => written += n,
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                Stats::add(&shared.stats.closed_output_timeout, 1);
                tracing::debug!(pending = out.len() - written, "closing: peer does not read");
                return Err(std::io::ErrorKind::TimedOut.into());
            }
        }
    }
    match ready_or_within(stream.flush(), stall).await {
        Some(r) => r,
        None => {
            Stats::add(&shared.stats.closed_output_timeout, 1);
            tracing::debug!("closing: peer does not read (flush)");
            Err(std::io::ErrorKind::TimedOut.into())
        }
    }
}

/// Runs `fut` to completion, or gives up (None) once `limit` has passed. A future that is done
/// at its first poll (a plain socket's flush) arms no timer.
async fn ready_or_within<F: Future>(fut: F, limit: Duration) -> Option<F::Output> {
    let mut fut = pin!(fut);
    if let Poll::Ready(v) = poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await {
        return Some(v);
    }
    tokio::time::timeout(limit, fut).await.ok()
}

/// Handles what `input` holds and writes the replies (in parts when the session pauses).
async fn serve<T: AsyncWrite + Unpin, S: Session>(
    stream: &mut T,
    session: &mut S,
    input: &mut BytesMut,
    out: &mut BytesMut,
    shared: &Shared,
    stall: Duration,
) -> Flow {
    let mut first = true;
    loop {
        let mut flow = session.process(input, out);
        if flow == Flow::Remote {
            flow = match session.forwarded() {
                Some(f) => f.settle(out).await,
                None => Flow::Continue,
            };
        }
        if !out.is_empty() {
            if std::mem::take(&mut first) {
                defer_replies().await;
            }
            // A subscriber whose mailbox overflows while this write is stalled closes now,
            // not after `output_timeout`.
            let written = match session.closing() {
                None => write_out(stream, out, stall, shared).await,
                Some(closing) => tokio::select! {
                    biased;
                    r = write_out(stream, out, stall, shared) => r,
                    () = closing.notified() => Err(std::io::ErrorKind::ConnectionAborted.into()),
                },
            };
            if written.is_err() {
                return Flow::Close;
            }
            Stats::add(&shared.stats.bytes_written, out.len() as u64);
            out.clear();
            if out.capacity() > KEEP_CAPACITY {
                *out = BytesMut::with_capacity(READ_CHUNK);
            }
        }
        if flow != Flow::Pause {
            return flow;
        }
    }
}

/// While a blocking command waits, pipelined input is buffered unprocessed; a client that
/// keeps sending past one request's limit (`Limits::resp_request_max` plus the 64 KiB inline
/// allowance, what a decoder may hold) is closed and counted, like redis's
/// client-query-buffer-limit, instead of growing the buffer without bound.
fn over_input_limit(input: &BytesMut, shared: &Shared) -> bool {
    let limit = shared
        .limits
        .load()
        .resp_request_max()
        .saturating_add(64 * 1024);
    if input.len() as u64 <= limit {
        return false;
    }
    Stats::add(&shared.stats.closed_input_buffer, 1);
    tracing::info!(
        bytes = input.len(),
        "closing: input buffered during a blocking wait passed the limit"
    );
    true
}

/// Waits for a session's inbox to be notified (forever without one: the `select!` arms that
/// use this are disabled then).
async fn notified(inbox: Option<&tokio::sync::Notify>) {
    match inbox {
        Some(n) => n.notified().await,
        None => std::future::pending().await,
    }
}

/// Sleeps until `deadline`, forever if None.
async fn sleep_until(deadline: Option<std::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

/// On shutdown: takes what the peer has already sent (without waiting for more) so that
/// requests in flight are answered rather than dropped. Over TLS this is what has arrived and
/// decrypts to plaintext now; a record only partly received is left, like bytes still in
/// flight over plain TCP.
fn drain_received<T: AsyncRead + Unpin>(stream: &mut T, input: &mut BytesMut) -> usize {
    let mut total = 0;
    while total < DRAIN_LIMIT {
        input.reserve(READ_CHUNK);
        match read_ready(stream, input) {
            Some(Ok(n)) if n > 0 => total += n,
            _ => break,
        }
    }
    total
}

/// One read that does not wait: the read is polled once with a waker that does nothing (the
/// caller reads no more after it), outside tokio's cooperative budget so that a busy
/// connection's spent budget does not pass for "nothing received". None: nothing to read now.
fn read_ready<T: AsyncRead + Unpin>(
    stream: &mut T,
    input: &mut BytesMut,
) -> Option<std::io::Result<usize>> {
    let mut cx = Context::from_waker(Waker::noop());
    let read = pin!(tokio::task::unconstrained(stream.read_buf(input)));
    match read.poll(&mut cx) {
        Poll::Ready(r) => Some(r),
        Poll::Pending => None,
    }
}

async fn read_some<T: AsyncRead + Unpin>(
    stream: &mut T,
    input: &mut BytesMut,
    idle: Duration,
) -> std::io::Result<usize> {
    if idle.is_zero() {
        return stream.read_buf(input).await;
    }
    match tokio::time::timeout(idle, stream.read_buf(input)).await {
        Ok(r) => r,
        Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    struct CountWakes(AtomicUsize);
    impl Wake for CountWakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn deferring_replies_requeues_the_task_once() {
        let wakes = Arc::new(CountWakes(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&wakes));
        let mut cx = Context::from_waker(&waker);
        let mut defer = pin!(defer_replies());
        assert!(defer.as_mut().poll(&mut cx).is_pending());
        assert_eq!(
            wakes.0.load(Ordering::Relaxed),
            1,
            "woken to be polled again"
        );
        assert!(defer.as_mut().poll(&mut cx).is_ready());
        assert_eq!(wakes.0.load(Ordering::Relaxed), 1);
    }

    /// On a current-thread runtime, tasks already woken run before a deferred reply is written.
    #[tokio::test(flavor = "current_thread")]
    async fn deferred_work_runs_after_the_tasks_already_queued() {
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (a, b) = (Arc::clone(&order), Arc::clone(&order));
        let first = tokio::spawn(async move {
            a.lock().unwrap().push("a handled");
            defer_replies().await;
            a.lock().unwrap().push("a replied");
        });
        let second = tokio::spawn(async move {
            b.lock().unwrap().push("b handled");
        });
        first.await.unwrap();
        second.await.unwrap();
        assert_eq!(
            *order.lock().unwrap(),
            ["a handled", "b handled", "a replied"]
        );
    }
}
