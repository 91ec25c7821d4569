//! Typed ids: a realm's, a user's, an embed key's, and a realm's update ids
//! are all integers in the store and on the wire, and never interchangeable.
//! Each gets a type of its own so that a user id cannot be passed where a
//! realm id is meant; the stores read and write them as plain integers.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<$name> for i64 {
            fn from(id: $name) -> i64 {
                id.0
            }
        }
    };
}

id_type!(
    /// A realm (organization), unique on the server.
    RealmId
);
id_type!(
    /// A user, unique on the server (not only in the realm), as Zulip's are.
    UserId
);
id_type!(
    /// An embed key, unique on the server.
    EmbedKeyId
);
id_type!(
    /// A position in one realm's sequence of presence changes: every change
    /// takes the realm's next one, so "changes after update id n" is exact.
    /// 0 means "before any change".
    UpdateId
);

impl UpdateId {
    /// What Zulip answers as `presence_last_update_id` when there is no
    /// change to name (a realm with presence disabled).
    pub const NONE_ON_WIRE: UpdateId = UpdateId(-1);

    /// The id the change after this one takes.
    pub fn next(self) -> UpdateId {
        UpdateId(self.0 + 1)
    }
}

/// Calls the macro `$m` once per id type: each store implements its integer
/// column conversions for all of them this way.
macro_rules! for_each_id {
    ($m:ident) => {
        $m!($crate::ids::RealmId);
        $m!($crate::ids::UserId);
        $m!($crate::ids::EmbedKeyId);
        $m!($crate::ids::UpdateId);
    };
}
pub(crate) use for_each_id;
