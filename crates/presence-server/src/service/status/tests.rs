//! The checks of a status change, in Zulip's order, and what a change
//! makes of a stored status.

use super::*;

const NOW: i64 = 1_800_000_000;

fn params(pairs: &[(&str, &str)]) -> UpdateStatusParams {
    let mut p = UpdateStatusParams::default();
    for &(name, value) in pairs {
        let value = Some(value.to_owned());
        match name {
            "status_text" => p.status_text = value,
            "emoji_name" => p.emoji_name = value,
            "emoji_code" => p.emoji_code = value,
            "reaction_type" => p.reaction_type = value,
            "away" => p.away = Some(value.as_deref() == Some("true")),
            "expires_at" => p.expires_at = value.and_then(|v| v.parse().ok()),
            other => panic!("unknown parameter {other}"),
        }
    }
    p
}

fn refusal(pairs: &[(&str, &str)]) -> String {
    StatusUpdate::check(params(pairs), NOW)
        .expect_err("refused")
        .to_string()
}

#[test]
fn zulips_refusals_come_in_zulips_order() {
    assert_eq!(refusal(&[]), "Client did not pass any new values.");
    assert_eq!(
        refusal(&[("status_text", &"x".repeat(61))]),
        "status_text is too long (limit: 60 characters)"
    );
    assert_eq!(
        refusal(&[("status_text", "In a meeting"), ("emoji_code", "1f4bb")]),
        "Client must pass emoji_name if they pass either emoji_code or reaction_type."
    );
    assert_eq!(
        refusal(&[("emoji_code", "1f4bb"), ("emoji_name", "invalid")]),
        "Emoji 'invalid' does not exist"
    );
    assert_eq!(
        refusal(&[("emoji_code", "1f4bb"), ("emoji_name", "car")]),
        "Invalid emoji name."
    );
    assert_eq!(
        refusal(&[
            ("emoji_code", "1f4bb"),
            ("emoji_name", "car"),
            ("reaction_type", "realm_emoji")
        ]),
        "Invalid custom emoji."
    );
    assert_eq!(
        refusal(&[
            ("emoji_code", "zap"),
            ("emoji_name", "zulip"),
            ("reaction_type", "zulip_extra_emoji")
        ]),
        "Invalid emoji code."
    );
    assert_eq!(
        refusal(&[
            ("emoji_code", "1f4bb"),
            ("emoji_name", "car"),
            ("reaction_type", "other")
        ]),
        "Invalid emoji type."
    );
    assert_eq!(
        refusal(&[
            ("emoji_code", "1F4BB"),
            ("emoji_name", "x"),
            ("reaction_type", "unicode_emoji")
        ]),
        "Invalid emoji code."
    );
}

#[test]
fn text_is_trimmed_before_it_is_measured() {
    let spaced = format!("  {}  ", "é".repeat(60));
    let update = StatusUpdate::check(params(&[("status_text", &spaced)]), NOW).unwrap();
    assert_eq!(update.text.as_deref(), Some("é".repeat(60).as_str()));
    assert_eq!(
        refusal(&[("status_text", "a\0b")]),
        "status_text may not contain a NUL character"
    );
}

#[test]
fn emoji_are_looked_up_by_name_and_cleared_by_an_empty_one() {
    let update = StatusUpdate::check(params(&[("emoji_name", "calendar")]), NOW).unwrap();
    let emoji = update.emoji.unwrap();
    assert_eq!(
        (emoji.code.as_str(), emoji.reaction_type.as_str()),
        ("1f4c5", UNICODE_EMOJI)
    );
    let zulip = StatusUpdate::check(params(&[("emoji_name", "zulip")]), NOW).unwrap();
    assert_eq!(zulip.emoji.unwrap().reaction_type, "zulip_extra_emoji");
    let cleared = StatusUpdate::check(params(&[("emoji_name", ""), ("emoji_code", "x")]), NOW)
        .unwrap()
        .emoji
        .unwrap();
    assert_eq!(
        (cleared.code.as_str(), cleared.reaction_type.as_str()),
        ("", UNICODE_EMOJI)
    );
    // A name the server does not know passes with a well-formed code.
    let other = [
        ("emoji_name", "octopus"),
        ("emoji_code", "1f419"),
        ("reaction_type", "unicode_emoji"),
    ];
    assert!(StatusUpdate::check(params(&other), NOW).is_ok());
}

#[test]
fn an_expiry_needs_a_status_and_a_future() {
    assert_eq!(
        refusal(&[("away", "true"), ("expires_at", "1800000100")]),
        "expires_at needs status_text or emoji_name"
    );
    assert_eq!(
        refusal(&[("status_text", "x"), ("expires_at", "1800000000")]),
        "expires_at must be in the future"
    );
    let update = StatusUpdate::check(
        params(&[("status_text", "x"), ("expires_at", "1800000001")]),
        NOW,
    )
    .unwrap();
    assert_eq!(update.expires_at, Some(NOW + 1));
}

#[test]
fn a_change_replaces_only_what_it_gives() {
    let mut current = StatusRow::empty(UserId(1));
    current.status_text = "Old".to_owned();
    current.expires_at = Some(NOW + 50);
    let emoji_only = StatusUpdate::check(params(&[("emoji_name", "bus")]), NOW).unwrap();
    let next = emoji_only.apply_to(&current).unwrap();
    assert_eq!(
        (next.status_text.as_str(), next.emoji_name.as_str()),
        ("Old", "bus")
    );
    assert_eq!(
        next.expires_at, None,
        "a change without expiry ends the old one"
    );
    let clear =
        StatusUpdate::check(params(&[("status_text", ""), ("emoji_name", "")]), NOW).unwrap();
    assert!(clear.apply_to(&next).unwrap().is_blank());
    let away = StatusUpdate::check(params(&[("away", "true")]), NOW).unwrap();
    assert_eq!(away.apply_to(&next), None);
}
