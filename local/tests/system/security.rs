//! The attacker's view (docs/security.md): roles only an admin grants, limits on guessing
//! and on fresh accounts, and an edge that does not wait for slow clients.

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use platform::clock::ManualClock;
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{logged_in, request, sign_up, start, start_with_clock};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

/// A POST with headers; the status, the `Retry-After` header and the body.
async fn post(
    base: &str,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: Value,
) -> (StatusCode, Option<u64>, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = req.send().await.expect("request");
    let status = res.status();
    let retry_after = res
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok()?.parse().ok());
    (status, retry_after, res.json().await.unwrap_or(Value::Null))
}

async fn log_in(base: &str, email: &str, password: &str) -> (StatusCode, Option<u64>, Value) {
    post(
        base,
        "/users/login",
        None,
        &[],
        json!({"email": email, "password": password}),
    )
    .await
}

fn clock() -> ManualClock {
    ManualClock::starting_at(chrono::Utc::now())
}

#[tokio::test]
async fn an_address_that_ops_will_use_gives_a_stranger_nothing() {
    // The old hole: a stranger signs up with the address ops is about to list as admin.
    let sys = start(&[]).await;
    let stranger = support::signed_up(&sys.base, "ops@shop.kr").await;
    let me = stranger.get("/users/me").await;
    assert_eq!(me["role"], "customer");
    let (status, body) = stranger
        .call(reqwest::Method::GET, "/users/nobody", None)
        .await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "FORBIDDEN"));
    // Nor can they grant themselves the role.
    let (status, body) = stranger
        .call(
            reqwest::Method::PUT,
            &format!("/users/{}/role", stranger.user_id),
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "FORBIDDEN"));
    assert_eq!(stranger.get("/users/me").await["role"], "customer");
}

#[tokio::test]
async fn an_admin_grants_and_revokes_roles_and_a_revoked_admin_cannot_take_it_back() {
    let sys = start(&[]).await;
    let admin = sys.admin().await;
    let kim_id = sign_up(&sys.base, "kim@shop.kr").await;
    let set_role = |role: &'static str| {
        let admin = admin.clone();
        let path = format!("/users/{kim_id}/role");
        async move {
            admin
                .call(reqwest::Method::PUT, &path, Some(json!({"role": role})))
                .await
        }
    };

    let (status, body) = set_role("admin").await;
    assert_eq!(
        (status, body["role"].as_str()),
        (StatusCode::OK, Some("admin")),
        "{body}"
    );
    // Granted: the next login carries it, for at most 15 minutes.
    let (status, _, login) = log_in(&sys.base, "kim@shop.kr", "secret123").await;
    assert_eq!(status, StatusCode::OK);
    let expires_at = chrono::DateTime::parse_from_rfc3339(login["expiresAt"].as_str().unwrap())
        .unwrap()
        .with_timezone(&chrono::Utc);
    assert!(expires_at <= chrono::Utc::now() + chrono::Duration::minutes(15));
    let kim = logged_in(&sys.base, "kim@shop.kr", kim_id.clone()).await;
    assert_eq!(
        kim.get(&format!("/users/{}", admin.user_id)).await["role"],
        "admin"
    );

    // Revoked: the profile says so at once, and the next login is a customer's.
    let (status, body) = set_role("customer").await;
    assert_eq!(
        (status, body["role"].as_str()),
        (StatusCode::OK, Some("customer"))
    );
    assert_eq!(kim.get("/users/me").await["role"], "customer");
    // Her admin token lives on (15 minutes at most), but role changes read the stored role:
    // she can neither give it back to herself nor take it from the admin who revoked it.
    for (target, role) in [(&kim_id, "admin"), (&admin.user_id, "customer")] {
        let (status, body) = kim
            .call(
                reqwest::Method::PUT,
                &format!("/users/{target}/role"),
                Some(json!({"role": role})),
            )
            .await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::FORBIDDEN, "FORBIDDEN"),
            "{body}"
        );
    }
    assert_eq!(kim.get("/users/me").await["role"], "customer");
    assert_eq!(admin.get("/users/me").await["role"], "admin");
    let kim = logged_in(&sys.base, "kim@shop.kr", kim_id.clone()).await;
    let (status, _) = kim
        .call(
            reqwest::Method::GET,
            &format!("/users/{}", admin.user_id),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // What an admin cannot do.
    for (path, body, expected) in [
        (
            format!("/users/{}/role", admin.user_id),
            json!({"role": "customer"}),
            (StatusCode::CONFLICT, "OWN_ROLE"),
        ),
        (
            "/users/nobody/role".to_owned(),
            json!({"role": "admin"}),
            (StatusCode::NOT_FOUND, "NOT_FOUND"),
        ),
        (
            format!("/users/{kim_id}/role"),
            json!({"role": "root"}),
            (StatusCode::UNPROCESSABLE_ENTITY, "INVALID_ROLE"),
        ),
        (
            format!("/users/{kim_id}/role"),
            json!({"role": "admin", "extra": 1}),
            (StatusCode::BAD_REQUEST, "INVALID_BODY"),
        ),
    ] {
        let (status, answer) = admin.call(reqwest::Method::PUT, &path, Some(body)).await;
        assert_eq!((status, code(&answer)), expected, "{path}: {answer}");
    }
    assert_eq!(admin.get("/users/me").await["role"], "admin");
    assert_eq!(kim.get("/users/me").await["role"], "customer");
}

#[tokio::test]
async fn failed_logins_slow_down_then_lock_and_unknown_accounts_answer_the_same() {
    let clock = clock();
    let sys = start_with_clock(
        &[
            ("LOGIN_FAILURES_PER_ACCOUNT_PER_MINUTE", "3"),
            ("LOGIN_FAILURES_PER_ACCOUNT_PER_HOUR", "5"),
        ],
        Arc::new(clock.clone()),
    )
    .await;
    sign_up(&sys.base, "kim@shop.kr").await;
    for email in ["kim@shop.kr", "nobody@shop.kr"] {
        for _ in 0..3 {
            let (status, _, body) = log_in(&sys.base, email, "wrong-guess-1").await;
            assert_eq!(
                (status, code(&body)),
                (StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS")
            );
        }
        // Slowed down: refused before the password is looked at, the right one too.
        let (status, retry_after, body) = log_in(&sys.base, email, "secret123").await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::TOO_MANY_REQUESTS, "LOGIN_THROTTLED"),
            "{email}"
        );
        assert!(
            retry_after.is_some_and(|s| (1..=60).contains(&s)),
            "{retry_after:?}"
        );
    }
    // A minute later the account may try again; two more failures lock it for the hour.
    clock.advance(chrono::Duration::seconds(61));
    for _ in 0..2 {
        let (status, _, _) = log_in(&sys.base, "kim@shop.kr", "wrong-guess-2").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    clock.advance(chrono::Duration::seconds(61));
    let (status, retry_after, _) = log_in(&sys.base, "kim@shop.kr", "secret123").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        retry_after.is_some_and(|s| s > 60),
        "locked for the hour: {retry_after:?}"
    );
    clock.advance(chrono::Duration::hours(1));
    let (status, _, _) = log_in(&sys.base, "kim@shop.kr", "secret123").await;
    assert_eq!(status, StatusCode::OK, "the lock ends with its window");
}

#[tokio::test]
async fn a_success_clears_the_count_and_one_address_guessing_many_accounts_is_stopped() {
    let sys = start(&[
        ("LOGIN_FAILURES_PER_ACCOUNT_PER_MINUTE", "2"),
        ("LOGIN_FAILURES_PER_CLIENT_PER_HOUR", "4"),
    ])
    .await;
    sign_up(&sys.base, "kim@shop.kr").await;
    for _ in 0..2 {
        // One failure, then the right password: the account's count starts again.
        assert_eq!(
            log_in(&sys.base, "kim@shop.kr", "typo-1234").await.0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            log_in(&sys.base, "kim@shop.kr", "secret123").await.0,
            StatusCode::OK
        );
    }
    // Two failures so far from this address; two more accounts guessed, then the address
    // is stopped, whatever client address header it sends.
    for n in 0..2 {
        let email = format!("guess{n}@shop.kr");
        assert_eq!(
            log_in(&sys.base, &email, "guess-1234").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    let (status, retry_after, body) = post(
        &sys.base,
        "/users/login",
        None,
        &[("x-client-address", "203.0.113.9")],
        json!({"email": "guess9@shop.kr", "password": "guess-1234"}),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::TOO_MANY_REQUESTS, "LOGIN_THROTTLED")
    );
    assert!(retry_after.is_some());
}

#[tokio::test]
async fn fresh_accounts_and_coupon_requests_from_one_address_are_limited() {
    let sys = start(&[
        ("SIGNUPS_PER_CLIENT_PER_HOUR", "3"),
        ("COUPON_ISSUES_PER_CLIENT_PER_MINUTE", "2"),
    ])
    .await;
    let admin = sys.admin().await; // the first sign-up
    let source = admin
        .coupon_source(json!({"type": "FIXED", "amount": 100}), 0, 100)
        .await;
    let mut tokens = Vec::new();
    for n in 0..2 {
        let email = format!("fresh{n}@shop.kr");
        let id = sign_up(&sys.base, &email).await;
        tokens.push(logged_in(&sys.base, &email, id).await.token);
    }
    let form = json!({"email": "fresh9@shop.kr", "password": "secret123", "name": "Fresh"});
    let (status, retry_after, body) = post(&sys.base, "/users/signup", None, &[], form).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::TOO_MANY_REQUESTS, "SIGNUP_THROTTLED")
    );
    assert!(retry_after.is_some_and(|s| s > 0));

    let path = format!("/coupon-sources/{source}/issue");
    for token in &tokens {
        let (status, _, body) = post(&sys.base, &path, Some(token), &[], json!({})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, retry_after, body) =
        post(&sys.base, &path, Some(&admin.token), &[], json!({})).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::TOO_MANY_REQUESTS, "ISSUE_THROTTLED")
    );
    assert!(retry_after.is_some_and(|s| (1..=60).contains(&s)));
    assert_eq!(
        admin.get(&format!("/coupon-sources/{source}")).await["issued"],
        2
    );
}

/// Sends `bytes` on a raw connection and reads until the server closes it (with a
/// deadline, so a server that waits forever fails the test instead of hanging it).
async fn raw_exchange(base: &str, bytes: &[u8]) -> String {
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    // A server that refuses early may reset the connection mid-send: what it answered, if
    // anything, is still read below.
    let _ = stream.write_all(bytes).await;
    let mut answer = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("the server neither answered nor closed the connection");
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn the_edge_refuses_huge_headers_and_drops_clients_that_stall() {
    let sys = start(&[]).await;
    let router = sys.system.router();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let limits = local::server::Limits {
        header_read: Duration::from_secs(1),
        body_read: Duration::from_secs(1),
        ..local::server::Limits::default()
    };
    tokio::spawn(local::server::serve(
        listener,
        router,
        limits,
        std::future::pending(),
    ));

    // A 200 KB header: refused (431, or the connection dropped), the handler never runs.
    let huge = format!(
        "GET /products HTTP/1.1\r\nHost: x\r\nX-Padding: {}\r\n\r\n",
        "a".repeat(200 * 1024)
    );
    let answer = raw_exchange(&base, huge.as_bytes()).await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
        "{answer}"
    );

    // Headers that never end: the connection is closed (with a 408 at most).
    let answer = raw_exchange(&base, b"GET /products HTTP/1.1\r\nHost: x\r\n").await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );

    // A body announced but never sent: the request ends with an error body, not a held
    // connection.
    let head = "POST /users/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"email\":";
    let answer = raw_exchange(&base, head.as_bytes()).await;
    let status_line = answer.lines().next().unwrap_or_default();
    assert!(status_line.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("UNREADABLE_BODY"), "{answer}");
    // The server still serves everyone else.
    let (status, body) = request(&base, reqwest::Method::GET, "/products", None, None, &[]).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNAUTHORIZED, "UNAUTHORIZED")
    );
}
