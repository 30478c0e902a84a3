//! Conversations: one long-lived command per host and argv that answers one line per request
//! line (psql reading queries on stdin, flushing each result), kept as long as the runner.
//!
//! In: a target, an argv, one request line. Out: the one line answered. Only for read-only,
//! idempotent requests (the live-primary probe): a conversation that breaks (the command
//! exited, the connection dropped, no answer in time) is dropped, and the caller falls back to a
//! one-shot command, which reports the error in full; one that cannot start is an error.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::Mutex;

use super::{within, SshRunner, Started, Target};
use crate::execute::ExecError;

type Writer = Pin<Box<dyn AsyncWrite + Send>>;
type Reader = BufReader<Pin<Box<dyn AsyncRead + Send>>>;

struct Conversation {
    stdin: Writer,
    stdout: Reader,
    /// Keeps the command alive.
    child: Started,
}

type Slot = Arc<Mutex<Option<Conversation>>>;

/// The conversations of one runner, by target and argv.
#[derive(Default)]
pub struct Conversations(std::sync::Mutex<HashMap<(Target, Vec<String>), Slot>>);

impl Conversations {
    fn slot(&self, target: &Target, argv: &[&str]) -> Slot {
        let key = (target.clone(), argv.iter().map(|a| a.to_string()).collect());
        self.0
            .lock()
            .expect("conversations")
            .entry(key)
            .or_default()
            .clone()
    }
}

impl Conversations {
    /// Ends every conversation: end of input, then waits for the command to exit.
    pub(super) async fn close(&self) {
        let slots: Vec<Slot> = self
            .0
            .lock()
            .expect("conversations")
            .drain()
            .map(|(_, s)| s)
            .collect();
        for slot in slots {
            if let Some(mut c) = slot.lock().await.take() {
                let _ = c.stdin.shutdown().await;
                drop(c.stdin);
                drop(c.stdout);
                if let Started::Remote(child) = c.child {
                    let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
                }
            }
        }
    }
}

impl SshRunner {
    /// Sends `request` (one line) to the conversation running `argv` on `target`, starting it if
    /// needed, and returns the line it answers. `Ok(None)` when the conversation failed (it is
    /// dropped; the next request starts a new one); an error when it could not be started.
    pub(super) async fn ask(
        &self,
        target: &Target,
        argv: &[&str],
        request: &str,
        timeout: Duration,
    ) -> Result<Option<String>, ExecError> {
        let slot = self.conversations.slot(target, argv);
        let mut conv = slot.lock().await;
        if conv.is_none() {
            let started = within(target, timeout, self.spawn_piped(target, argv)).await?;
            *conv = converse(started);
        }
        let Some(c) = conv.as_mut() else {
            return Ok(None);
        };
        match tokio::time::timeout(timeout, exchange(c, request)).await {
            Ok(Some(line)) => Ok(Some(line)),
            _ => {
                *conv = None;
                Ok(None)
            }
        }
    }
}

fn converse(child: Started) -> Option<Conversation> {
    let Started::Remote(mut child) = child else {
        return None;
    };
    let stdin: Writer = Box::pin(child.stdin().take()?);
    let stdout: Pin<Box<dyn AsyncRead + Send>> = Box::pin(child.stdout().take()?);
    Some(Conversation {
        stdin,
        stdout: BufReader::new(stdout),
        child: Started::Remote(child),
    })
}

async fn exchange(c: &mut Conversation, request: &str) -> Option<String> {
    c.stdin.write_all(request.as_bytes()).await.ok()?;
    c.stdin.write_all(b"\n").await.ok()?;
    c.stdin.flush().await.ok()?;
    let mut line = String::new();
    match c.stdout.read_line(&mut line).await {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line.trim_end().to_string()),
    }
}
