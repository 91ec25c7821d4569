//! Tests of the `presence-server` binary as scripts and operators use it:
//! the admin commands' output and exit codes, a server process honouring
//! admin changes, durability across `kill -9`, graceful shutdown, and the
//! official Python client `zulip` against a real server process.

mod support;

mod admin_commands;
mod crash;
mod python_client;
mod serve;
mod transfer;
