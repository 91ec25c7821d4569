//! The presence rules of docs/PROTOCOL.md §4.1, §5 and §7.1 as pure functions
//! over times.
//!
//! Nothing here locks, allocates much or does I/O, so every rule can be
//! tested directly and reused by the fast path, the writer and the views.

use presence_types::PresenceStatus;

/// Zulip's window within which a client's last active report still makes
/// the client `active` (PRESENCE_LEGACY_EVENT_OFFSET_FOR_ACTIVITY_SECONDS).
pub const ACTIVE_WINDOW_SECS: i64 = 70;

/// The two times a client record holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Times {
    /// Unix seconds of the last report of any kind.
    pub last_connected: i64,
    /// Unix seconds of the last active report, if any.
    pub last_active: Option<i64>,
}

/// Applies one report (status `active` if `active`, else idle) made at `now`
/// to a record, following the update rule of docs/PROTOCOL.md §4.1.
///
/// Returns the new times, or `None` when the report changes nothing (the
/// common case of a ping within `min_freq` seconds of the last one), in which
/// case nothing may be written and no update id used.
pub fn apply_report(
    current: Option<Times>,
    active: bool,
    now: i64,
    min_freq: i64,
) -> Option<Times> {
    let Some(old) = current else {
        return Some(Times {
            last_connected: now,
            last_active: active.then_some(now),
        });
    };
    let mut new = old;
    if now - old.last_connected > min_freq {
        new.last_connected = now;
    }
    if active && old.last_active.is_none_or(|t| now - t > min_freq) {
        new.last_active = Some(now);
        new.last_connected = new.last_connected.max(now);
    }
    (new != old).then_some(new)
}

/// The times a record shows after its user turns presence off: both moved
/// back to `cutoff` if later, never forward. `None` if already that old.
pub fn backdate(times: Times, cutoff: i64) -> Option<Times> {
    let new = Times {
        last_connected: times.last_connected.min(cutoff),
        last_active: times.last_active.map(|t| t.min(cutoff)),
    };
    (new != times).then_some(new)
}

/// The legacy view of one record: `(status, timestamp)`.
///
/// `active` while the last active report is within 70 s of the last report,
/// stamped with the active time; otherwise `idle`, stamped with the last report.
pub fn legacy_status(times: Times) -> (PresenceStatus, i64) {
    match times.last_active {
        Some(active) if active + ACTIVE_WINDOW_SECS >= times.last_connected => {
            (PresenceStatus::Active, active)
        }
        _ => (PresenceStatus::Idle, times.last_connected),
    }
}

/// Whether `timestamp` is older than the offline threshold at `now`.
pub fn is_offline(timestamp: i64, now: i64, offline_threshold: i64) -> bool {
    now - timestamp > offline_threshold
}

/// What others see of a user: the dot a buddy list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Availability {
    /// Some client reported activity within the offline threshold.
    Active,
    /// Some client reported within the threshold, none of it activity.
    Idle,
    /// Nothing within the threshold (or never).
    #[default]
    Offline,
}

/// A user's availability at `now` from the latest active report and the
/// latest report of any kind over all their clients.
///
/// This is the rule of Zulip's clients over the modern format (active while
/// the active timestamp is recent, else idle while the other one is), with
/// this server's threshold semantics: a time exactly `offline_threshold`
/// old still counts, one second more does not.
pub fn availability(
    last_active: Option<i64>,
    last_connected: Option<i64>,
    now: i64,
    offline_threshold: i64,
) -> Availability {
    let recent = |t: Option<i64>| t.is_some_and(|t| !is_offline(t, now, offline_threshold));
    if recent(last_active) {
        Availability::Active
    } else if recent(last_connected) {
        Availability::Idle
    } else {
        Availability::Offline
    }
}

/// The first second after `now` at which [`availability`] will differ from
/// what it is at `now` if no report comes in, or `None` if it will not
/// (the user is offline).
pub fn next_change(
    last_active: Option<i64>,
    last_connected: Option<i64>,
    now: i64,
    offline_threshold: i64,
) -> Option<i64> {
    let expiry = |t: i64| t.saturating_add(offline_threshold).saturating_add(1);
    match availability(last_active, last_connected, now, offline_threshold) {
        Availability::Active => last_active.map(expiry),
        Availability::Idle => last_connected.map(expiry),
        Availability::Offline => None,
    }
}

/// Zulip's rule for "this user just came online", which sends an event at
/// once instead of waiting for others' next poll: the user's first record
/// ever, or an active report when the user's latest active report is older
/// than `offline_threshold - ping_interval - 10` seconds (or there is none),
/// that is, when others might already show the user offline before the next
/// regular ping.
pub fn comes_online(
    had_records: bool,
    previous_last_active: Option<i64>,
    active: bool,
    now: i64,
    offline_threshold: i64,
    ping_interval: i64,
) -> bool {
    if !had_records {
        return true;
    }
    let gap = offline_threshold - ping_interval - 10;
    active && previous_last_active.is_none_or(|t| now - t > gap)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 55;

    fn t(last_connected: i64, last_active: Option<i64>) -> Times {
        Times {
            last_connected,
            last_active,
        }
    }

    #[test]
    fn first_report_creates_the_record() {
        assert_eq!(apply_report(None, true, 100, MIN), Some(t(100, Some(100))));
        assert_eq!(apply_report(None, false, 100, MIN), Some(t(100, None)));
    }

    #[test]
    fn reports_within_min_freq_change_nothing() {
        let rec = t(100, Some(100));
        assert_eq!(apply_report(Some(rec), true, 155, MIN), None);
        assert_eq!(apply_report(Some(rec), false, 155, MIN), None);
    }

    #[test]
    fn reports_after_min_freq_move_the_times() {
        let rec = t(100, Some(100));
        assert_eq!(
            apply_report(Some(rec), false, 156, MIN),
            Some(t(156, Some(100)))
        );
        assert_eq!(
            apply_report(Some(rec), true, 156, MIN),
            Some(t(156, Some(156)))
        );
    }

    #[test]
    fn active_after_idle_sets_active_and_raises_connected() {
        // Idle pings kept last_connected fresh; the first active report
        // within min_freq of that still records activity.
        let rec = t(200, None);
        assert_eq!(
            apply_report(Some(rec), true, 210, MIN),
            Some(t(210, Some(210)))
        );
        let rec = t(200, Some(100));
        assert_eq!(
            apply_report(Some(rec), true, 210, MIN),
            Some(t(210, Some(210)))
        );
    }

    #[test]
    fn out_of_order_reports_never_move_times_back() {
        let rec = t(1000, Some(1000));
        assert_eq!(apply_report(Some(rec), true, 900, MIN), None);
        assert_eq!(apply_report(Some(rec), false, 10, MIN), None);
    }

    #[test]
    fn backdating_moves_only_backwards() {
        assert_eq!(backdate(t(1000, Some(990)), 700), Some(t(700, Some(700))));
        assert_eq!(backdate(t(600, Some(500)), 700), None);
        assert_eq!(backdate(t(800, None), 700), Some(t(700, None)));
    }

    #[test]
    fn legacy_status_uses_the_seventy_second_window() {
        assert_eq!(
            legacy_status(t(170, Some(100))),
            (PresenceStatus::Active, 100)
        );
        assert_eq!(
            legacy_status(t(171, Some(100))),
            (PresenceStatus::Idle, 171)
        );
        assert_eq!(legacy_status(t(100, None)), (PresenceStatus::Idle, 100));
    }

    #[test]
    fn availability_follows_the_threshold() {
        use Availability::*;
        assert_eq!(availability(Some(100), Some(100), 300, 200), Active);
        assert_eq!(availability(Some(100), Some(250), 301, 200), Idle);
        assert_eq!(availability(Some(100), Some(100), 301, 200), Offline);
        assert_eq!(availability(None, Some(100), 150, 200), Idle);
        assert_eq!(availability(None, None, 150, 200), Offline);
    }

    #[test]
    fn the_next_change_is_one_second_past_the_threshold() {
        assert_eq!(next_change(Some(100), Some(160), 120, 200), Some(301));
        assert_eq!(next_change(Some(100), Some(160), 301, 200), Some(361));
        assert_eq!(next_change(Some(100), Some(160), 361, 200), None);
        assert_eq!(next_change(None, None, 0, 200), None);
    }

    #[test]
    fn coming_online_follows_zulips_rule() {
        // Defaults: threshold 200, ping 60, so the gap is 130 s.
        assert!(comes_online(false, None, false, 1000, 200, 60));
        assert!(comes_online(true, None, true, 1000, 200, 60));
        assert!(comes_online(true, Some(869), true, 1000, 200, 60));
        assert!(!comes_online(true, Some(870), true, 1000, 200, 60));
        assert!(!comes_online(true, Some(0), false, 1000, 200, 60));
    }

    #[test]
    fn offline_is_strictly_past_the_threshold() {
        assert!(!is_offline(100, 300, 200));
        assert!(is_offline(100, 301, 200));
    }
}
