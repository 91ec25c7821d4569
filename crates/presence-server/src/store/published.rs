//! What a node tells the others of a batch it committed, so that they can
//! install it without reading it back: the batch's presence records, as
//! a notification's payload, and the inbox where a receiving node keeps
//! them until its writer asks.
//!
//! A payload is text, one line of header and a line per record:
//!
//! ```text
//! p1 <token> <realm> <first> <last>
//! +<user> <id - first> <last connected> <last active, or - for none> <client>
//! -<user> <client>
//! ```
//!
//! `p1` is the format's version: a payload of any other form is not
//! parsed, and its receiver reads back instead (as it does for the bare
//! token that batches which do not fit send). The token names the sending
//! store, so that its own listener skips it. Client names are the only
//! free text; they are written last on their line, with `%`, line breaks
//! and quotes percent-escaped.
//!
//! Why a node may trust what it installs from here is argued in
//! docs/ARCHITECTURE.md, "Learning another node's commit".

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use thiserror::Error;

use super::{Mutation, PresenceRow};
use crate::ids::{RealmId, UpdateId, UserId};

/// The most bytes a PostgreSQL notification's payload may have (it must be
/// shorter than 8000).
pub const MAX_PAYLOAD: usize = 7999;

/// The version mark that starts every payload of this format.
const VERSION: &str = "p1";

/// One committed batch's changes to one realm's presence records: the
/// final state of each record it wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The realm.
    pub realm_id: RealmId,
    /// The first update id the batch took: one past the realm's sequence
    /// as the batch found it under its lock.
    pub first: UpdateId,
    /// The last update id it took: the realm's sequence after it.
    pub last: UpdateId,
    /// Records put, each with its times and update id.
    pub puts: Vec<PresenceRow>,
    /// Records removed: user and client.
    pub removed: Vec<(UserId, String)>,
}

/// Why a payload was not taken: its receiver reads back instead.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum PayloadError {
    /// Not this format, or not this version of it.
    #[error("not a published batch of a known version")]
    Version,
    /// A field is missing or not what it should be.
    #[error("a malformed published batch: {0}")]
    Malformed(&'static str),
}

/// The payload that publishes `published` from the store named `token`,
/// or `None` if it does not fit in a notification.
pub fn encode(token: &str, published: &Published) -> Option<String> {
    let mut out = String::with_capacity(64 + 32 * published.puts.len());
    let (first, last) = (published.first, published.last);
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        "{VERSION} {token} {} {} {}",
        published.realm_id, first, last
    );
    for put in &published.puts {
        let _ = write!(
            out,
            "\n+{} {} {} ",
            put.user_id,
            put.update_id.0 - first.0,
            put.last_connected_time
        );
        match put.last_active_time {
            Some(active) => {
                let _ = write!(out, "{active} ");
            }
            None => out.push_str("- "),
        }
        escape_into(&mut out, &put.client);
        if out.len() > MAX_PAYLOAD {
            return None;
        }
    }
    for (user_id, client) in &published.removed {
        let _ = write!(out, "\n-{user_id} ");
        escape_into(&mut out, client);
    }
    (out.len() <= MAX_PAYLOAD).then_some(out)
}

/// Whether `payload` claims to be a published batch of this format (it may
/// still fail to parse): a listener's quick look, before [`decode`].
pub fn is_published(payload: &str) -> bool {
    payload
        .strip_prefix(VERSION)
        .is_some_and(|rest| rest.starts_with(' '))
}

/// The sending store's token of a payload of this format, without parsing
/// the rest.
pub fn sender(payload: &str) -> Option<&str> {
    let rest = payload.strip_prefix(VERSION)?.strip_prefix(' ')?;
    rest.split([' ', '\n']).next()
}

/// Parses a payload: the sender's token and the batch. Everything is
/// checked (ids inside the batch's range, times that are numbers, client
/// names that unescape), so that a payload is either taken whole or not at
/// all.
pub fn decode(payload: &str) -> Result<(String, Published), PayloadError> {
    if !is_published(payload) {
        return Err(PayloadError::Version);
    }
    let mut lines = payload.split('\n');
    let header = lines.next().ok_or(PayloadError::Version)?;
    let mut fields = header.split(' ').skip(1);
    let token = fields.next().filter(|t| !t.is_empty());
    let token = token.ok_or(PayloadError::Malformed("no token"))?;
    let realm_id = RealmId(number(fields.next(), "realm")?);
    let first = UpdateId(number(fields.next(), "first id")?);
    let last = UpdateId(number(fields.next(), "last id")?);
    if fields.next().is_some() || first.0 < 1 || last < first {
        return Err(PayloadError::Malformed("header"));
    }
    let mut published = Published {
        realm_id,
        first,
        last,
        puts: Vec::new(),
        removed: Vec::new(),
    };
    for line in lines {
        if let Some(put) = line.strip_prefix('+') {
            published.puts.push(decode_put(put, first, last)?);
        } else if let Some(removed) = line.strip_prefix('-') {
            let (user, client) = removed
                .split_once(' ')
                .ok_or(PayloadError::Malformed("removal"))?;
            published
                .removed
                .push((UserId(number(Some(user), "user")?), unescape(client)?));
        } else {
            return Err(PayloadError::Malformed("record"));
        }
    }
    Ok((token.to_owned(), published))
}

/// One put record's line, after its `+`.
fn decode_put(line: &str, first: UpdateId, last: UpdateId) -> Result<PresenceRow, PayloadError> {
    let mut fields = line.splitn(5, ' ');
    let user_id = UserId(number(fields.next(), "user")?);
    let offset: i64 = number(fields.next(), "update id")?;
    let update_id = UpdateId(first.0.checked_add(offset).unwrap_or(i64::MAX));
    if offset < 0 || update_id > last {
        return Err(PayloadError::Malformed("an update id outside the batch"));
    }
    let last_connected_time = number(fields.next(), "last connected")?;
    let last_active_time = match fields.next() {
        Some("-") => None,
        active => Some(number(active, "last active")?),
    };
    let client = unescape(fields.next().ok_or(PayloadError::Malformed("client"))?)?;
    Ok(PresenceRow {
        user_id,
        client,
        last_connected_time,
        last_active_time,
        update_id,
    })
}

/// A decimal integer field.
fn number(field: Option<&str>, what: &'static str) -> Result<i64, PayloadError> {
    field
        .and_then(|f| f.parse().ok())
        .ok_or(PayloadError::Malformed(what))
}

/// Appends a client name with the characters that would break a line or
/// the SQL literal it travels in escaped.
fn escape_into(out: &mut String, client: &str) {
    for c in client.chars() {
        match c {
            '%' => out.push_str("%25"),
            '\n' => out.push_str("%0A"),
            '\r' => out.push_str("%0D"),
            '\'' => out.push_str("%27"),
            c => out.push(c),
        }
    }
}

/// A client name from its escaped form; refused if empty or badly escaped.
fn unescape(escaped: &str) -> Result<String, PayloadError> {
    let bad = PayloadError::Malformed("client");
    if escaped.is_empty() {
        return Err(bad);
    }
    let mut out = String::with_capacity(escaped.len());
    let mut rest = escaped;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let code = rest
            .get(at + 1..at + 3)
            .ok_or(PayloadError::Malformed("client"))?;
        out.push(match code {
            "25" => '%',
            "0A" => '\n',
            "0D" => '\r',
            "27" => '\'',
            _ => return Err(bad),
        });
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

impl Mutation {
    /// The user whose row or records the mutation changes.
    pub fn user_id(&self) -> UserId {
        match self {
            Mutation::PutPresence(p) => p.user_id,
            Mutation::PutStatus(row) => row.user_id,
            Mutation::DeletePresence { user_id, .. }
            | Mutation::SetUserSettings { user_id, .. }
            | Mutation::AddDevice { user_id, .. }
            | Mutation::RemoveDevice { user_id, .. }
            | Mutation::ExpireStatus { user_id, .. } => *user_id,
        }
    }
}

/// The published batches of one commit, one per realm it changed, from its
/// mutations: `realms[i]` is the realm of `batch[i]`'s user, and `ranges`
/// each realm's sequence before the batch and after it. Each record
/// appears once, in its final state (a record put and then removed by the
/// same batch is removed), as the store writes it. `None` if the batch
/// changes anything but presence records: such a batch is not published.
pub fn from_batch(
    batch: &[Mutation],
    realms: &[RealmId],
    ranges: &[(RealmId, UpdateId, UpdateId)],
) -> Option<Vec<Published>> {
    if batch.len() != realms.len() {
        return None;
    }
    type Finals<'a> = BTreeMap<(UserId, &'a str), Option<&'a PresenceRow>>;
    let mut finals: HashMap<RealmId, Finals<'_>> = HashMap::new();
    for (mutation, &realm_id) in batch.iter().zip(realms) {
        let records = finals.entry(realm_id).or_default();
        match mutation {
            Mutation::PutPresence(p) => {
                records.insert((p.user_id, p.client.as_str()), Some(p));
            }
            Mutation::DeletePresence { user_id, client } => {
                records.insert((*user_id, client.as_str()), None);
            }
            _ => return None,
        }
    }
    let mut out = Vec::new();
    for &(realm_id, before, after) in ranges {
        if after <= before {
            continue;
        }
        let mut published = Published {
            realm_id,
            first: before.next(),
            last: after,
            puts: Vec::new(),
            removed: Vec::new(),
        };
        for ((user_id, client), record) in finals.remove(&realm_id).unwrap_or_default() {
            match record {
                Some(put) => published.puts.push(put.clone()),
                None => published.removed.push((user_id, client.to_owned())),
            }
        }
        out.push(published);
    }
    // Records of a realm whose sequence did not move: not a batch the
    // writer makes, and nothing to publish it as.
    finals.is_empty().then_some(out)
}

/// How many published batches an inbox keeps at most, over all realms; past
/// it, the oldest of the realm that received one go (its reader then reads
/// back).
const INBOX_CAPACITY: usize = 4096;

/// Other nodes' published batches as a node's listener received them, by
/// realm and first id, until its writer takes them. Shared between the
/// listener thread, which puts, and the writer, which takes.
#[derive(Default)]
pub struct Inbox {
    realms: Mutex<InboxRealms>,
    arrived: Condvar,
}

/// The batches an [`Inbox`] holds.
#[derive(Default)]
struct InboxRealms {
    by_realm: HashMap<RealmId, BTreeMap<UpdateId, Published>>,
    held: usize,
}

impl Inbox {
    /// Keeps a batch another node published, and wakes a writer waiting
    /// for it.
    pub fn put(&self, published: Published) {
        let mut realms = self.realms.lock();
        let InboxRealms { by_realm, held } = &mut *realms;
        let batches = by_realm.entry(published.realm_id).or_default();
        if batches.insert(published.first, published).is_none() {
            *held += 1;
        }
        if *held > INBOX_CAPACITY && batches.pop_first().is_some() {
            *held -= 1;
        }
        drop(realms);
        self.arrived.notify_all();
    }

    /// How many batches the inbox holds.
    pub fn len(&self) -> usize {
        self.realms.lock().held
    }

    /// Whether the inbox holds no batch.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The batches of `realm_id` that cover exactly the update ids after
    /// `since` up to `until`, in order, taken out of the inbox; `None` if
    /// they do not (a gap, or a batch that runs past `until`), after
    /// waiting up to `wait` for the missing ones to arrive. Batches at or
    /// below `since` are dropped either way: memory has them already.
    pub fn take(
        &self,
        realm_id: RealmId,
        since: UpdateId,
        until: UpdateId,
        wait: Duration,
    ) -> Option<Vec<Published>> {
        let deadline = Instant::now() + wait;
        let mut realms = self.realms.lock();
        loop {
            match realms.chain(realm_id, since, until) {
                Chain::Complete(batches) => return Some(batches),
                Chain::Broken => return None,
                Chain::Short => {
                    if self.arrived.wait_until(&mut realms, deadline).timed_out() {
                        return match realms.chain(realm_id, since, until) {
                            Chain::Complete(batches) => Some(batches),
                            Chain::Broken | Chain::Short => None,
                        };
                    }
                }
            }
        }
    }

    /// The realms the inbox holds batches of.
    pub fn realms(&self) -> Vec<RealmId> {
        let realms = self.realms.lock();
        realms
            .by_realm
            .iter()
            .filter(|(_, batches)| !batches.is_empty())
            .map(|(realm_id, _)| *realm_id)
            .collect()
    }

    /// The batches of `realm_id` that follow `since` without a gap, taken
    /// out of the inbox in order (those at or below `since` are dropped:
    /// memory has them). If any batch is left that does not follow them,
    /// nothing is taken and the answer is `None`: a notification went
    /// missing (or was too large to carry its batch), so read instead.
    pub fn take_following(&self, realm_id: RealmId, since: UpdateId) -> Option<Vec<Published>> {
        let mut realms = self.realms.lock();
        let Some(last) = realms
            .by_realm
            .get(&realm_id)
            .and_then(|batches| batches.values().map(|b| b.last).max())
        else {
            return Some(Vec::new());
        };
        if last <= since {
            // Only batches memory has already.
            let dropped = realms.by_realm.remove(&realm_id).map_or(0, |b| b.len());
            realms.held -= dropped;
            return Some(Vec::new());
        }
        match realms.chain(realm_id, since, last) {
            Chain::Complete(batches) => Some(batches),
            Chain::Short | Chain::Broken => None,
        }
    }
}

/// What an inbox holds toward a range of ids.
enum Chain {
    /// Every batch of the range, in order (taken out of the inbox).
    Complete(Vec<Published>),
    /// Batches from the start of the range on are missing: they may come.
    Short,
    /// A batch runs past the range's end, or the range is empty: waiting
    /// cannot help.
    Broken,
}

impl InboxRealms {
    /// Drops a realm's batches at or below `since` and looks for the chain
    /// of batches that covers (since, until].
    fn chain(&mut self, realm_id: RealmId, since: UpdateId, until: UpdateId) -> Chain {
        if until <= since {
            return Chain::Broken;
        }
        let Some(batches) = self.by_realm.get_mut(&realm_id) else {
            return Chain::Short;
        };
        while let Some(entry) = batches.first_entry() {
            if entry.get().last > since {
                // A batch that starts at or below `since` and ends past it
                // cannot be installed from where memory stands.
                if entry.get().first <= since {
                    return Chain::Broken;
                }
                break;
            }
            entry.remove();
            self.held -= 1;
        }
        let mut at = since;
        let mut firsts = Vec::new();
        while at < until {
            let Some(batch) = batches.get(&at.next()) else {
                return Chain::Short;
            };
            if batch.last > until {
                return Chain::Broken;
            }
            firsts.push(batch.first);
            at = batch.last;
        }
        self.held -= firsts.len();
        Chain::Complete(
            firsts
                .iter()
                .filter_map(|first| batches.remove(first))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests;
