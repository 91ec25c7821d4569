//! The steady state a scenario is measured in: every user of the realm
//! has pinged once (so, as when each client sent its credentials a minute
//! before, no client is new) and every user's presence has been read once
//! (so each user's object is written, as it is for readers asking again
//! for users who have not changed since).
//!
//! Both modes prime alike: the instruction counts over one connection,
//! the throughput runs over as many connections as they measure with, so
//! that a realm of 100,000 users is primed in seconds.

use std::sync::Arc;

use crate::load::{Connection, Request, Sequence, Workload};
use crate::provision::Realm;
use crate::scenarios;

/// Which request each user is primed with.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// The user pings (B's request).
    Ping,
    /// The first user reads the user's presence (A's request).
    Read,
}

/// Every user once, spread over `stride` connections: connection `i`
/// takes users `i`, `i + stride`, `i + 2 * stride`, and so on.
struct Everyone {
    realm: Realm,
    step: Step,
    stride: usize,
}

impl Workload for Everyone {
    fn next(&self, c: &mut Connection) -> Request {
        let users = &self.realm.users;
        let user = &users[(c.index + c.sent as usize * self.stride) % users.len()];
        match self.step {
            Step::Ping => scenarios::idle_ping(user),
            Step::Read => scenarios::read_presence(&users[0], user),
        }
    }
}

/// Has every user of `realm` ping once, then reads each one's presence
/// once, over `connections` connections to `address`; fails if any of
/// those requests did.
pub async fn prime(address: &str, realm: &Realm, connections: usize) -> anyhow::Result<()> {
    let connections = connections.clamp(1, realm.users.len().max(1));
    for step in [Step::Ping, Step::Read] {
        let workload: Arc<dyn Workload> = Arc::new(Everyone {
            realm: realm.clone(),
            step,
            stride: connections,
        });
        let mut tasks = Vec::with_capacity(connections);
        for index in 0..connections {
            // Connection `index` owns the users congruent to it.
            let count = (realm.users.len() - index).div_ceil(connections) as u64;
            let mut sequence = Sequence::open_as(address, workload.clone(), index).await?;
            tasks.push(tokio::spawn(async move { sequence.send(count).await }));
        }
        for task in tasks {
            let outcome = task.await??;
            anyhow::ensure!(
                outcome.failures == 0,
                "{} of the priming requests ({step:?}) failed",
                outcome.failures
            );
        }
    }
    Ok(())
}
