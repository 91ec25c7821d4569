//! Who gets a connection: a server-wide number of slots, a share per
//! client address, and a cheap refusal for everyone past them.
//!
//! Every connection holds a server-wide slot and a slot of its address (an
//! IPv6 address counts by its /64, as the rate limiter does) until it
//! closes. An address may hold at most `max_connections_per_ip`
//! connections, so one client, however many sockets it opens, cannot take
//! the slots everyone else needs: past its share its new connections are
//! refused while other addresses are still served. A connection over
//! either limit is answered 503 with a JSON body and closed, without its
//! request ever being read.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use presence_types::{ErrorBody, ErrorCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::connection::now_ms;

/// How many over-limit connections may be getting their 503 at once; past
/// that they are closed without a word, so refusing costs little too.
const MAX_REFUSALS_IN_FLIGHT: usize = 64;

/// How long a refused connection may take to receive its answer.
const REFUSAL_TIME: Duration = Duration::from_secs(2);

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Every server-wide slot is taken.
    ServerFull,
    /// The client's address holds its whole share already.
    AddressFull,
}

impl Refusal {
    fn message(self) -> &'static str {
        match self {
            Refusal::ServerFull => "The server has too many open connections; try again",
            Refusal::AddressFull => "Too many open connections from your address; try again",
        }
    }

    /// The complete HTTP answer for this refusal.
    fn answer(self) -> Bytes {
        static ANSWERS: OnceLock<[Bytes; 2]> = OnceLock::new();
        let answers = ANSWERS.get_or_init(|| {
            [Refusal::ServerFull, Refusal::AddressFull].map(|refusal| {
                let body = serde_json::to_string(&ErrorBody::new(
                    ErrorCode::ServiceUnavailable,
                    refusal.message(),
                ))
                .expect("an error body serializes");
                Bytes::from(format!(
                    "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                ))
            })
        });
        answers[self as usize].clone()
    }
}

/// The slots a connection holds until it closes.
#[derive(Debug)]
pub struct Admitted {
    _server: OwnedSemaphorePermit,
    _address: AddressSlot,
}

/// Hands out connection slots, server-wide and per address.
pub struct Admission {
    server: Arc<Semaphore>,
    max_connections: usize,
    addresses: Arc<AddressShares>,
}

impl Admission {
    /// At most `max_connections` connections, `per_address` of them from
    /// any one address.
    pub fn new(max_connections: usize, per_address: usize) -> Self {
        Admission {
            server: Arc::new(Semaphore::new(max_connections)),
            max_connections,
            addresses: Arc::new(AddressShares {
                cap: per_address,
                open: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Slots for a new connection from `ip` (already keyed by address or
    /// /64), or why there are none. The address's share is looked at
    /// first, so that one client's flood never costs a server-wide slot.
    pub fn admit(&self, ip: IpAddr) -> Result<Admitted, Refusal> {
        let address = self.addresses.take(ip).ok_or(Refusal::AddressFull)?;
        let server = self
            .server
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refusal::ServerFull)?;
        Ok(Admitted {
            _server: server,
            _address: address,
        })
    }

    /// Waits, at most `limit`, until every connection has closed; whether
    /// they all did.
    pub async fn all_closed(&self, limit: Duration) -> bool {
        let all = u32::try_from(self.max_connections).unwrap_or(u32::MAX);
        tokio::time::timeout(limit, self.server.acquire_many(all))
            .await
            .is_ok()
    }

    /// How many connections an address holds now.
    pub fn open_from(&self, ip: IpAddr) -> usize {
        self.addresses
            .open
            .lock()
            .get(&ip)
            .map_or(0, |&n| n as usize)
    }
}

/// Open connections per address.
struct AddressShares {
    cap: usize,
    open: Mutex<HashMap<IpAddr, u32>>,
}

impl AddressShares {
    fn take(self: &Arc<Self>, ip: IpAddr) -> Option<AddressSlot> {
        let mut open = self.open.lock();
        let count = open.entry(ip).or_insert(0);
        if *count as usize >= self.cap {
            return None;
        }
        *count += 1;
        Some(AddressSlot {
            shares: self.clone(),
            ip,
        })
    }
}

/// One connection's place in its address's share.
struct AddressSlot {
    shares: Arc<AddressShares>,
    ip: IpAddr,
}

impl std::fmt::Debug for AddressSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AddressSlot").field("ip", &self.ip).finish()
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self.shares.open.lock();
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                // Forgotten at once: the table only ever holds addresses
                // with open connections.
                open.remove(&self.ip);
            }
        }
    }
}

/// Refuses connections over a limit: answers 503 with a JSON body and
/// closes, without ever reading a request through hyper.
pub struct Refuser {
    in_flight: Arc<Semaphore>,
    /// Refusals not yet logged, and when the last log line was (ms): a
    /// flood is logged once a second, not once a connection.
    unlogged: AtomicU64,
    logged_at: AtomicU64,
}

impl Refuser {
    /// A refuser with its own small budget of concurrent refusals.
    pub fn new() -> Self {
        Refuser {
            in_flight: Arc::new(Semaphore::new(MAX_REFUSALS_IN_FLIGHT)),
            unlogged: AtomicU64::new(0),
            logged_at: AtomicU64::new(0),
        }
    }

    /// Answers 503 on `stream` and closes it, in the background.
    pub fn refuse(&self, mut stream: TcpStream, refusal: Refusal) {
        self.log(refusal);
        let Ok(permit) = self.in_flight.clone().try_acquire_owned() else {
            return;
        };
        tokio::spawn(async move {
            let _permit = permit;
            let _ = tokio::time::timeout(REFUSAL_TIME, async {
                stream.write_all(&refusal.answer()).await?;
                stream.shutdown().await?;
                // Read what the client sends until it closes: closing with
                // unread input would reset the connection, and the client
                // could lose the answer.
                let mut sink = [0u8; 4096];
                let mut total = 0usize;
                while total < 1 << 16 {
                    match stream.read(&mut sink).await? {
                        0 => break,
                        n => total += n,
                    }
                }
                Ok::<_, io::Error>(())
            })
            .await;
        });
    }

    fn log(&self, refusal: Refusal) {
        let refused = self.unlogged.fetch_add(1, Ordering::Relaxed) + 1;
        let now = now_ms();
        let last = self.logged_at.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= 1000
            && self
                .logged_at
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.unlogged.fetch_sub(refused, Ordering::Relaxed);
            tracing::warn!(refused, ?refusal, "refusing connections over a limit");
        }
    }
}

impl Default for Refuser {
    fn default() -> Self {
        Refuser::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_complete_json_answers() {
        for refusal in [Refusal::ServerFull, Refusal::AddressFull] {
            let answer = refusal.answer();
            let text = std::str::from_utf8(&answer).unwrap();
            let (head, body) = text.split_once("\r\n\r\n").unwrap();
            assert!(head.starts_with("HTTP/1.1 503 "));
            assert!(head.contains(&format!("content-length: {}", body.len())));
            let body: serde_json::Value = serde_json::from_str(body).unwrap();
            assert_eq!(body["code"], "SERVICE_UNAVAILABLE");
            assert_eq!(body["msg"], refusal.message());
        }
    }

    #[tokio::test]
    async fn an_address_gets_its_share_and_no_more() {
        let admission = Admission::new(10, 2);
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let first = admission.admit(a).unwrap();
        let _second = admission.admit(a).unwrap();
        assert_eq!(admission.admit(a).unwrap_err(), Refusal::AddressFull);
        // Another address is still served.
        let _other = admission.admit(b).unwrap();
        drop(first);
        assert_eq!(admission.open_from(a), 1);
        assert!(admission.admit(a).is_ok());
    }

    #[tokio::test]
    async fn the_server_wide_limit_holds_over_every_address() {
        let admission = Admission::new(2, 2);
        let held: Vec<_> = (1..=2u8)
            .map(|i| admission.admit([10, 0, 0, i].into()).unwrap())
            .collect();
        let refused = admission.admit([10, 0, 0, 3].into()).unwrap_err();
        assert_eq!(refused, Refusal::ServerFull);
        assert_eq!(
            admission.open_from([10, 0, 0, 3].into()),
            0,
            "a refused connection keeps no place in its address's share"
        );
        drop(held);
        assert!(admission.all_closed(Duration::from_millis(10)).await);
    }
}
