//! Tests of the `presence-server` binary as scripts and operators use it:
//! the admin commands' output and exit codes, a server process honouring
//! admin changes, durability across `kill -9`, graceful shutdown, secrets
//! kept out of the log and the database, the official Python client `zulip`
//! against a real server process, the same on PostgreSQL with two nodes, and
//! the web components in a headless browser.

mod support;

mod admin_commands;
mod browser;
mod crash;
mod docs;
mod embed_keys;
mod file_modes;
mod help;
mod lifecycle;
mod logs;
mod pipes;
mod postgres;
mod python_client;
mod readme;
mod refused_stores;
mod security;
mod serve;
mod streams;
mod tls;
mod transfer;
