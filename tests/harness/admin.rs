//! Realms, users and embed keys made as an operator makes them: through
//! the admin functions on a second connection to the server's store,
//! waiting until the running server has taken the change.

use std::time::{Duration, Instant};

use presence_server::clock::Clock;
use presence_server::store::Store;
use reqwest::StatusCode;

use crate::{TestServer, User};

impl TestServer {
    /// Creates a realm through the admin path.
    pub fn create_realm(&self, string_id: &str) {
        let now = self.clock.now_secs();
        self.with_admin(|store| presence_server::admin::create_realm(store, string_id, None, now))
            .expect("the realm is created");
    }

    /// Creates a user through the admin path and waits until the server knows it.
    pub async fn create_user(&self, realm: &str, email: &str, is_bot: bool) -> User {
        let now = self.clock.now_secs();
        let (row, key) = self
            .with_admin(|store| {
                presence_server::admin::create_user(
                    store,
                    realm,
                    email,
                    &format!("Name of {email}"),
                    is_bot,
                    now,
                )
            })
            .expect("the user is created");
        let user = User {
            id: row.id.0,
            email: email.to_owned(),
            key,
        };
        self.wait_until(|| {
            let user = user.clone();
            async move { self.get(&user, "/users/me").await.status == StatusCode::OK }
        })
        .await;
        user
    }

    /// Creates an embed key for pages on `origins` through the admin path,
    /// as the admin command does (returning once the server has it); returns
    /// the key.
    pub async fn create_embed_key(&self, realm: &str, name: &str, origins: &[&str]) -> String {
        let now = self.clock.now_secs();
        let origins: Vec<String> = origins.iter().map(|o| (*o).to_owned()).collect();
        let (_, key) = self
            .admin_change(|store| {
                presence_server::admin::create_embed_key(store, realm, name, &origins, now)
            })
            .expect("the embed key is created");
        key
    }

    /// Runs an admin change, then waits as the admin command does until
    /// every running node has installed it.
    pub fn admin_change<T: Send>(&self, f: impl FnOnce(&mut dyn Store) -> T + Send) -> T {
        let clock = self.clock.clone();
        self.with_admin(|store| {
            let out = f(store);
            let lagging = presence_server::admin::wait_until_applied(
                store,
                || clock.now_secs(),
                presence_server::admin::APPLY_WAIT,
            )
            .expect("the nodes' reports are readable");
            assert!(
                lagging.is_empty(),
                "nodes did not apply the change: {lagging:?}"
            );
            out
        })
    }

    /// Creates a realm and `n` users in it named `user{i}@{realm}.test`.
    pub async fn realm_with_users(&self, realm: &str, n: usize) -> Vec<User> {
        self.create_realm(realm);
        let mut users = Vec::new();
        for i in 0..n {
            users.push(
                self.create_user(realm, &format!("user{i}@{realm}.test"), false)
                    .await,
            );
        }
        users
    }

    /// Polls `check` until it is true, failing the test after five seconds.
    pub async fn wait_until<F, Fut>(&self, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !check().await {
            assert!(Instant::now() < deadline, "condition not met within 5 s");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
