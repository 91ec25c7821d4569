//! Where connection settings come from: flags, then environment, then the
//! zuliprc; and what a missing or broken configuration says.

use presence_client::types::ReportedStatus::Active;

use crate::support::{Account, TestServer, presence};

fn setup() -> (TestServer, Account) {
    let server = TestServer::start();
    server.create_realm("acme");
    let reader = server.create_user("acme", "reader@acme.test", "Reader", false);
    let alice = server.create_user("acme", "alice@acme.test", "Alice", false);
    server.report(&alice, "website", Active);
    (server, reader)
}

const GET_ALICE: &[&str] = &["get", "alice@acme.test"];

fn sees_alice(run: &crate::support::Run) {
    assert!(
        run.ok().starts_with("● alice@acme.test is active, "),
        "{}",
        run.stdout
    );
}

#[test]
fn the_home_zuliprc_as_downloaded_from_zulip() {
    let (server, reader) = setup();
    // `localhost:PORT` becomes http://localhost:PORT/api, as in the Python client.
    let site = format!("localhost:{}", server.port);
    server.write_home_zuliprc(&server.zuliprc_text(&reader, &site));
    sees_alice(&presence(&server, &[], GET_ALICE));

    // A site that already ends in /api (with a trailing slash) is used as is.
    let site = format!("{}/api/", server.base);
    server.write_home_zuliprc(&server.zuliprc_text(&reader, &site));
    sees_alice(&presence(&server, &[], GET_ALICE));
}

#[test]
fn config_flag_and_zulip_config_name_other_files() {
    let (server, reader) = setup();
    let path = server.home_dir().join("work.zuliprc");
    std::fs::write(&path, server.zuliprc_text(&reader, &server.base)).unwrap();
    let path = path.to_str().unwrap();
    sees_alice(&presence(
        &server,
        &[],
        &["--config", path, "get", "alice@acme.test"],
    ));
    sees_alice(&presence(&server, &[("ZULIP_CONFIG", path)], GET_ALICE));
}

#[test]
fn flags_beat_environment_beats_file() {
    let (server, reader) = setup();
    let wrong = "A".repeat(32);
    let file = format!(
        "[api]\nemail={}\nkey={wrong}\nsite={}\n",
        reader.email, server.base
    );
    server.write_home_zuliprc(&file);
    // The file's key is wrong...
    presence(&server, &[], GET_ALICE).fails(1, "Invalid API key");
    // ...the environment's is right and wins...
    sees_alice(&presence(
        &server,
        &[("ZULIP_API_KEY", &reader.key)],
        GET_ALICE,
    ));
    // ...and a flag wins over both.
    presence(
        &server,
        &[("ZULIP_API_KEY", &reader.key)],
        &["--api-key", &wrong, "get", "alice@acme.test"],
    )
    .fails(1, "Invalid API key");
    sees_alice(&presence(
        &server,
        &[],
        &["--api-key", &reader.key, "get", "alice@acme.test"],
    ));
}

#[test]
fn the_environment_alone_is_enough() {
    let (server, reader) = setup();
    let env = [
        ("ZULIP_SITE", server.base.as_str()),
        ("ZULIP_EMAIL", reader.email.as_str()),
        ("ZULIP_API_KEY", reader.key.as_str()),
    ];
    sees_alice(&presence(&server, &env, GET_ALICE));
}

#[test]
fn a_missing_config_names_the_file_and_the_setting() {
    let (server, reader) = setup();
    let rc = server.home_dir().join(".zuliprc");
    presence(&server, &[], GET_ALICE).fails(
        2,
        &format!(
            "presence: no server address: ZULIP_SITE is not set and the config file {} does not exist (or pass --site)",
            rc.display()
        ),
    );

    server.write_home_zuliprc(&format!(
        "[api]\nemail={}\nsite={}\n",
        reader.email, server.base
    ));
    presence(&server, &[], GET_ALICE).fails(
        2,
        &format!(
            "presence: no API key: {} has no `key` in its [api] section and ZULIP_API_KEY is not set (or pass --api-key)",
            rc.display()
        ),
    );

    presence(
        &server,
        &[],
        &["--config", "/nonexistent/zuliprc", "get", "x"],
    )
    .fails(
        2,
        "presence: the config file /nonexistent/zuliprc does not exist",
    );
}

#[test]
fn a_broken_config_names_the_file_and_the_line() {
    let (server, reader) = setup();
    let rc = server.write_home_zuliprc(&format!(
        "[api]\nemail={}\nthis line is not an option\n",
        reader.email
    ));
    presence(&server, &[], GET_ALICE).fails(
        2,
        &format!(
            "presence: the config file {}, line 3: `this line is not an option` is not of the form `name = value`",
            rc.display()
        ),
    );
}

#[test]
fn an_unusable_site_is_a_configuration_error() {
    let (server, reader) = setup();
    presence(
        &server,
        &[],
        &[
            "--site",
            "http://",
            "--email",
            &reader.email,
            "--api-key",
            &reader.key,
            "get",
            "x",
        ],
    )
    .fails(2, "is not a valid server address");
}
