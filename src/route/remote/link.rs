//! One persistent, pipelined connection to a remote member, shared by every session.
//!
//! Owns: connecting (with AUTH for a Redis member that has a password), writing queued
//! requests in batches, matching replies to requests strictly in order, the per-request
//! timeout, and reconnecting with back-off.
//! Must not touch: what requests or replies mean (only where a reply ends, `reply.rs`).
//!
//! Invariants:
//! - Every job sent gets exactly one answer: its reply, or an error (timeout, member down,
//!   garbage). A job is never answered with another job's reply: after any doubt (a timeout, a
//!   reply that does not frame, the connection closing) the connection is dropped and every job
//!   in flight on it fails.
//! - A request waits at most `timeout` for its reply (measured from when it was queued); while
//!   the member cannot be reached, jobs fail at once (fast), and a connect is retried with
//!   back-off from [`RETRY_MIN`] to [`RETRY_MAX`].
//! - Memory is bounded: jobs queued or in flight past [`MAX_QUEUED`] are refused; a reply is
//!   bounded by `reply::MAX_VALUE`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::reply::{self, Expect};
use super::{MemberStats, RemoteError, Target};

/// First wait before reconnecting to a member that refused or dropped us.
pub const RETRY_MIN: Duration = Duration::from_millis(50);
/// Longest wait between connection attempts.
pub const RETRY_MAX: Duration = Duration::from_secs(2);
/// Jobs queued or in flight on one connection past which new ones are refused.
pub const MAX_QUEUED: usize = 64 * 1024;
/// Requests gathered into one write.
const WRITE_BATCH: usize = 256 * 1024;

/// The answer to one job.
pub type Answer = Result<Bytes, RemoteError>;

/// A request on its way to the member.
pub struct Job {
    pub request: Bytes,
    pub expect: Expect,
    pub deadline: Instant,
    pub answer: oneshot::Sender<Answer>,
}

/// A request written and waiting for its reply.
struct InFlight {
    expect: Expect,
    deadline: Instant,
    answer: oneshot::Sender<Answer>,
}

impl InFlight {
    /// Time since the request was queued (its deadline is the member's timeout after that).
    fn age(&self, timeout: Duration) -> Duration {
        timeout.saturating_sub(self.deadline.saturating_duration_since(Instant::now()))
    }
}

/// The handle sessions send jobs through; the task behind it starts on first use.
#[derive(Default)]
pub struct Link {
    queue: OnceLock<mpsc::UnboundedSender<Job>>,
    queued: Arc<AtomicUsize>,
    connected: Arc<AtomicBool>,
}

impl Link {
    /// Queues `job` (starting the connection task on the first call); the job is answered
    /// with an error at once when the queue is full or no runtime is running.
    pub fn send(&self, target: &Arc<Target>, stats: &Arc<MemberStats>, job: Job) {
        if self.queued.fetch_add(1, Ordering::Relaxed) >= MAX_QUEUED {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            let _ = job.answer.send(Err(RemoteError::Overloaded));
            return;
        }
        let queue = self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                let task = Task {
                    target: Arc::clone(target),
                    stats: Arc::clone(stats),
                    queued: Arc::clone(&self.queued),
                    connected: Arc::clone(&self.connected),
                };
                rt.spawn(task.run(rx));
            }
            tx
        });
        if let Err(mpsc::error::SendError(job)) = queue.send(job) {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            let _ = job.answer.send(Err(RemoteError::Down("no runtime".into())));
        }
    }

    /// Requests queued or waiting for their reply on this connection.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// True while the connection is up.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }
}

struct Task {
    target: Arc<Target>,
    stats: Arc<MemberStats>,
    queued: Arc<AtomicUsize>,
    connected: Arc<AtomicBool>,
}

impl Task {
    async fn run(self, mut rx: mpsc::UnboundedReceiver<Job>) {
        let mut retry = RETRY_MIN;
        let mut logged_down = false;
        loop {
            let why = match self.connect().await {
                Ok(stream) => {
                    if logged_down {
                        tracing::info!(node = %self.target.name, "remote node reachable again");
                        logged_down = false;
                    }
                    retry = RETRY_MIN;
                    self.connected.store(true, Ordering::Relaxed);
                    let why = self.serve(stream, &mut rx).await;
                    self.connected.store(false, Ordering::Relaxed);
                    match why {
                        None => return, // Every sender is gone: the member left the ring.
                        Some(e) => e,
                    }
                }
                Err(e) => e,
            };
            if !logged_down {
                tracing::warn!(node = %self.target.name, address = %self.target.address, error = %why, "remote node unreachable");
                logged_down = true;
            }
            // Down: jobs fail fast until the next attempt.
            let wake = Instant::now() + retry;
            loop {
                tokio::select! {
                    job = rx.recv() => match job {
                        Some(job) => self.fail(job.answer, why.clone()),
                        None => return,
                    },
                    () = tokio::time::sleep_until(wake) => break,
                }
            }
            retry = (retry * 2).min(RETRY_MAX);
        }
    }

    fn fail(&self, answer: oneshot::Sender<Answer>, e: RemoteError) {
        self.queued.fetch_sub(1, Ordering::Relaxed);
        let _ = answer.send(Err(e));
    }

    async fn connect(&self) -> Result<TcpStream, RemoteError> {
        let m = &self.target;
        let timeout = m.timeout;
        let stream = tokio::time::timeout(timeout, TcpStream::connect(m.address.as_str()))
            .await
            .map_err(|_| RemoteError::Down("connect timed out".into()))?
            .map_err(|e| RemoteError::Down(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        let mut stream = stream;
        if let Some(password) = &m.password {
            let mut req = BytesMut::new();
            super::encode_command(&mut req, &[b"AUTH", password.as_bytes()]);
            let reply = tokio::time::timeout(timeout, async {
                stream.write_all(&req).await?;
                let mut buf = BytesMut::new();
                loop {
                    if let Ok(Some(n)) = reply::frame_len(Expect::Resp, &buf) {
                        return Ok::<_, std::io::Error>(buf.split_to(n));
                    }
                    if stream.read_buf(&mut buf).await? == 0 || buf.len() > reply::MAX_LINE {
                        return Err(std::io::ErrorKind::UnexpectedEof.into());
                    }
                }
            })
            .await
            .map_err(|_| RemoteError::Down("AUTH timed out".into()))?
            .map_err(|e| RemoteError::Down(e.to_string()))?;
            if &reply[..] != b"+OK\r\n" {
                let text = String::from_utf8_lossy(&reply).trim().to_string();
                return Err(RemoteError::Down(format!("AUTH refused: {text}")));
            }
        }
        Ok(stream)
    }

    /// Serves one connection until it fails (the error) or every sender is gone (None).
    async fn serve(
        &self,
        stream: TcpStream,
        rx: &mut mpsc::UnboundedReceiver<Job>,
    ) -> Option<RemoteError> {
        let (mut reader, mut writer) = stream.into_split();
        let inflight: Mutex<VecDeque<InFlight>> = Mutex::new(VecDeque::new());
        // Wakes a reader with nothing in flight (so no deadline to wait for) once there is.
        let sent = tokio::sync::Notify::new();
        let write = async {
            let mut batch = BytesMut::new();
            loop {
                let job = rx.recv().await?;
                self.take(job, &mut batch, &inflight);
                while batch.len() < WRITE_BATCH {
                    match rx.try_recv() {
                        Ok(job) => self.take(job, &mut batch, &inflight),
                        Err(_) => break,
                    }
                }
                sent.notify_one();
                if let Err(e) = writer.write_all(&batch).await {
                    return Some(RemoteError::Down(e.to_string()));
                }
                batch.clear();
            }
        };
        let read = async {
            let mut buf = BytesMut::with_capacity(16 * 1024);
            loop {
                // Answer every complete reply.
                loop {
                    let head = inflight.lock().expect("inflight").front().map(|j| j.expect);
                    let Some(expect) = head else { break };
                    match reply::frame_len(expect, &buf) {
                        Ok(Some(n)) => {
                            let reply = buf.split_to(n).freeze();
                            let job = inflight.lock().expect("inflight").pop_front();
                            if let Some(job) = job {
                                self.queued.fetch_sub(1, Ordering::Relaxed);
                                if let Some(h) = self.stats.latency.get() {
                                    h.record(job.age(self.target.timeout).as_secs_f64());
                                }
                                let _ = job.answer.send(Ok(reply));
                            }
                        }
                        Ok(None) => break,
                        Err(g) => return RemoteError::Garbage(g.0),
                    }
                }
                let deadline = inflight
                    .lock()
                    .expect("inflight")
                    .front()
                    .map(|j| j.deadline);
                if deadline.is_none() && !buf.is_empty() {
                    return RemoteError::Garbage("reply to no request");
                }
                if buf.capacity() - buf.len() < 8 * 1024 {
                    buf.reserve(16 * 1024);
                }
                let read = reader.read_buf(&mut buf);
                let n = match deadline {
                    Some(d) => match tokio::time::timeout_at(d, read).await {
                        Ok(r) => r,
                        Err(_) => return RemoteError::Timeout(self.target.timeout),
                    },
                    None => tokio::select! {
                        r = read => r,
                        () = sent.notified() => continue,
                    },
                };
                match n {
                    Ok(0) => return RemoteError::Down("connection closed by the node".into()),
                    Ok(_) => {}
                    Err(e) => return RemoteError::Down(e.to_string()),
                }
            }
        };
        let why = tokio::select! {
            why = write => why,
            why = read => Some(why),
        };
        // Whatever was in flight can no longer be matched: it fails with the reason.
        let failed: Vec<InFlight> = inflight.lock().expect("inflight").drain(..).collect();
        let e = why
            .clone()
            .unwrap_or(RemoteError::Down("node removed".into()));
        if !failed.is_empty() {
            tracing::debug!(node = %self.target.name, jobs = failed.len(), error = %e, "remote connection dropped");
        }
        for job in failed {
            self.fail(job.answer, e.clone());
        }
        why
    }

    /// Appends `job`'s request to the batch and records it in flight (before it is written, so
    /// that its reply always finds it).
    fn take(&self, job: Job, batch: &mut BytesMut, inflight: &Mutex<VecDeque<InFlight>>) {
        if job.deadline <= Instant::now() || job.answer.is_closed() {
            // Expired while queued, or its session is gone: never sent.
            let e = RemoteError::Timeout(self.target.timeout);
            self.fail(job.answer, e);
            return;
        }
        batch.extend_from_slice(&job.request);
        inflight.lock().expect("inflight").push_back(InFlight {
            expect: job.expect,
            deadline: job.deadline,
            answer: job.answer,
        });
    }
}
