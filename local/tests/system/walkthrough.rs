//! The README's walkthrough, against the real `shop-local` binary on a free port:
//! sign-up → login → me, and what the gateway refuses.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

const SECRET: &str = "walkthrough-secret-of-32-bytes-at-least";

/// A running `shop-local`, killed when dropped.
struct Local {
    child: Child,
    base: String,
}

impl Drop for Local {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How long `shop-local` may take to say something, or to exit when it should.
const PATIENCE: Duration = Duration::from_secs(30);

/// `shop-local`, in memory whatever this test's environment says about AWS.
fn shop_local() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_shop-local"));
    command
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("STACK_PREFIX");
    command
}

/// Runs `command` to its end, killing it if it is still running after `PATIENCE`.
fn output_of(command: &mut Command) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the command");
    let deadline = Instant::now() + PATIENCE;
    while child.try_wait().expect("wait for the command").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{command:?} still running after {PATIENCE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("the command's output")
}

/// The lines a child writes to `stdout`, read on a thread of their own so that waiting for
/// one has a deadline.
fn lines_of(stdout: std::process::ChildStdout) -> mpsc::Receiver<String> {
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // Read to the end even when nobody listens any more: the child must never
            // block on a full pipe, nor fail writing to a closed one.
            let _ = send.send(line);
        }
    });
    receive
}

fn next_line(lines: &mpsc::Receiver<String>) -> String {
    lines
        .recv_timeout(PATIENCE)
        .unwrap_or_else(|e| panic!("shop-local said nothing more within {PATIENCE:?}: {e}"))
}

fn start(env: &[(&str, &str)]) -> Local {
    start_with_args(env, &[]).0
}

/// Starts `shop-local` with `args`; with `--demo`, also returns the six lines of its
/// report (admin, three products, the coupon source, the walkthrough's `export` line).
fn start_with_args(env: &[(&str, &str)], args: &[&str]) -> (Local, Vec<String>) {
    let mut child = shop_local()
        .args(args)
        .env("PORT", "0")
        .env("JWT_SECRET", SECRET)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start shop-local");
    let lines = lines_of(child.stdout.take().expect("stdout is piped"));
    let first = next_line(&lines);
    let base = first
        .trim()
        .strip_prefix("shop-local listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    let mut report = Vec::new();
    if args.contains(&"--demo") {
        for _ in 0..6 {
            report.push(next_line(&lines).trim().to_owned());
        }
    }
    (Local { child, base }, report)
}

async fn call(
    method: reqwest::Method,
    url: String,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new().request(method, url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// A public POST with a JSON body.
async fn post(local: &Local, path: &str, body: Value) -> (StatusCode, Value) {
    call(
        reqwest::Method::POST,
        format!("{}{path}", local.base),
        None,
        &[],
        Some(body),
    )
    .await
}

async fn sign_up_and_log_in(local: &Local, email: &str) -> (String, String) {
    let (status, body) = post(
        local,
        "/users/signup",
        json!({"email": email, "password": "secret123", "name": "Kim"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let user_id = body["userId"].as_str().unwrap().to_owned();
    let (status, body) = post(
        local,
        "/users/login",
        json!({"email": email, "password": "secret123"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body["expiresAt"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{body}"
    );
    (user_id, body["token"].as_str().unwrap().to_owned())
}

/// Logs in as the admin `--demo` made.
async fn demo_admin_token(local: &Local) -> String {
    let (status, body) = call(
        reqwest::Method::POST,
        format!("{}/users/login", local.base),
        None,
        &[],
        Some(json!({"email": "admin@shop.kr", "password": "admin1234"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["token"].as_str().unwrap().to_owned()
}

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn sign_up_log_in_and_read_me() {
    let local = start(&[]);
    let (user_id, token) = sign_up_and_log_in(&local, "Kim@Shop.KR").await;
    let (status, me) = call(
        reqwest::Method::GET,
        format!("{}/users/me", local.base),
        Some(&token),
        &[],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        me,
        json!({"userId": user_id, "email": "kim@shop.kr", "name": "Kim", "role": "customer"})
    );

    // Same e-mail again, in another case: taken.
    let (status, body) = post(
        &local,
        "/users/signup",
        json!({"email": "kim@shop.kr", "password": "secret123", "name": "Kim"}),
    )
    .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::CONFLICT, "EMAIL_TAKEN")
    );

    // A wrong password and an unknown e-mail get the same answer.
    for (email, password) in [
        ("kim@shop.kr", "wrong1234"),
        ("nobody@shop.kr", "secret123"),
    ] {
        let (status, body) = post(
            &local,
            "/users/login",
            json!({"email": email, "password": password}),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            body,
            json!({"error": {"code": "INVALID_CREDENTIALS", "message": "the e-mail address or the password is wrong"}})
        );
    }
}

/// Extra request headers of a test case.
type Headers<'a> = &'a [(&'a str, &'a str)];

fn token_with(secret: &str, sub: &str, role: &str, exp_offset_secs: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    // Well-formed in every other way (key id, issuer, audience), so that each case is
    // refused for its own reason.
    let claims = json!({
        "sub": sub, "role": role, "iat": now - 60, "nbf": now - 60, "exp": now + exp_offset_secs,
        "iss": user_service::auth::ISSUER, "aud": user_service::auth::AUDIENCE,
    });
    let header = jsonwebtoken::Header {
        kid: Some(user_service::keys::SigningKeys::SINGLE_KID.to_owned()),
        ..Default::default()
    };
    jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn the_gateway_refuses_missing_forged_tampered_and_expired_tokens() {
    let local = start(&[]);
    let (user_id, token) = sign_up_and_log_in(&local, "lee@shop.kr").await;
    let me = format!("{}/users/me", local.base);

    let forged = token_with(
        "someone else's secret of 32 bytes!!",
        &user_id,
        "admin",
        600,
    );
    let expired = token_with(SECRET, &user_id, "customer", -5);
    let mut tampered = token.clone();
    tampered.replace_range(tampered.len() - 3.., "abc");
    let cases: [(&str, Option<&str>, Headers); 6] = [
        ("no token", None, &[]),
        ("forged", Some(&forged), &[]),
        ("tampered", Some(&tampered), &[]),
        ("expired", Some(&expired), &[]),
        (
            "not a bearer",
            None,
            &[("authorization", "Basic a2ltOnNlY3JldA==")],
        ),
        (
            "headers only",
            None,
            &[("x-user-id", "u-1"), ("x-user-role", "admin")],
        ),
    ];
    for (case, token, headers) in cases {
        let (status, body) = call(reqwest::Method::GET, me.clone(), token, headers, None).await;
        assert_eq!(
            (status, error_code(&body)),
            (StatusCode::UNAUTHORIZED, "UNAUTHORIZED"),
            "{case}: {body}"
        );
    }
}

#[tokio::test]
async fn identity_headers_from_the_client_are_ignored() {
    let (local, _) = start_with_args(&[], &["--demo"]);
    let (kim, kim_token) = sign_up_and_log_in(&local, "kim2@shop.kr").await;
    let (lee, _) = sign_up_and_log_in(&local, "lee2@shop.kr").await;

    let (status, me) = call(
        reqwest::Method::GET,
        format!("{}/users/me", local.base),
        Some(&kim_token),
        &[("x-user-id", &lee)],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["userId"], kim.as_str());

    // A customer claiming the admin role is still a customer.
    let admin_route = format!("{}/users/{lee}", local.base);
    let (status, body) = call(
        reqwest::Method::GET,
        admin_route.clone(),
        Some(&kim_token),
        &[("x-user-role", "admin")],
        None,
    )
    .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::FORBIDDEN, "FORBIDDEN")
    );

    // The demo admin's role is stored with them, and the admin route answers.
    let boss_token = demo_admin_token(&local).await;
    let (status, body) = call(
        reqwest::Method::GET,
        admin_route,
        Some(&boss_token),
        &[],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["userId"].as_str(), body["role"].as_str()),
        (Some(lee.as_str()), Some("customer"))
    );
    let (_, me) = call(
        reqwest::Method::GET,
        format!("{}/users/me", local.base),
        Some(&boss_token),
        &[],
        None,
    )
    .await;
    assert_eq!(me["role"], "admin");
}

#[tokio::test]
async fn unknown_routes_wrong_methods_and_bad_bodies_get_error_bodies() {
    let local = start(&[]);
    let (_, token) = sign_up_and_log_in(&local, "park@shop.kr").await;
    for token in [None, Some(token.as_str())] {
        let (status, body) = call(
            reqwest::Method::GET,
            format!("{}/nowhere", local.base),
            token,
            &[],
            None,
        )
        .await;
        assert_eq!(
            (status, error_code(&body)),
            (StatusCode::NOT_FOUND, "NOT_FOUND")
        );
    }
    let (status, body) = call(
        reqwest::Method::DELETE,
        format!("{}/users/me", local.base),
        Some(&token),
        &[],
        None,
    )
    .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED")
    );

    let signup = format!("{}/users/signup", local.base);
    let cases = [
        (
            json!({"email": "a@shop.kr", "password": "secret123"}),
            StatusCode::BAD_REQUEST,
            "INVALID_BODY",
        ),
        (
            json!({"email": "a@shop.kr", "password": "secret123", "name": "A", "role": "admin"}),
            StatusCode::BAD_REQUEST,
            "INVALID_BODY",
        ),
        (
            json!({"email": 7, "password": "secret123", "name": "A"}),
            StatusCode::BAD_REQUEST,
            "INVALID_BODY",
        ),
        (
            json!({"email": "not-an-email", "password": "secret123", "name": "A"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_EMAIL",
        ),
        (
            json!({"email": "a@shop.kr", "password": "short1", "name": "A"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_PASSWORD",
        ),
        (
            json!({"email": "a@shop.kr", "password": "secret123", "name": "\u{200B}\u{200D}"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_NAME",
        ),
        (
            json!({"email": "a@shop.kr", "password": "secret123", "name": "Kim\u{202E}nimda"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_NAME",
        ),
        (
            json!({"email": "a@shop.kr", "password": "secret123", "name": "x".repeat(101)}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_NAME",
        ),
        (
            json!({"email": "a@shop.kr", "password": "secret123", "name": "x".repeat(70_000)}),
            StatusCode::PAYLOAD_TOO_LARGE,
            "BODY_TOO_LARGE",
        ),
    ];
    for (body, expected_status, expected_code) in cases {
        let (status, answer) =
            call(reqwest::Method::POST, signup.clone(), None, &[], Some(body)).await;
        assert_eq!(
            (status, error_code(&answer)),
            (expected_status, expected_code),
            "{answer}"
        );
    }
    let response = reqwest::Client::new()
        .post(signup)
        .body("{\"email\":")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(error_code(&body), "MALFORMED_JSON");
    // None of the refused sign-ups created a user.
    let (status, _) = post(
        &local,
        "/users/login",
        json!({"email": "a@shop.kr", "password": "secret123"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[test]
fn invalid_configuration_is_a_clear_error_at_start() {
    for (name, value) in [
        ("PORT", "not-a-port"),
        ("JWT_SECRET", "short"),
        ("JWT_KEYS", "not json"),
        ("ORDER_TTL_SECONDS", "0"),
    ] {
        let output = output_of(shop_local().env("PORT", "0").env(name, value));
        assert_eq!(output.status.code(), Some(2), "{name}={value}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!("configuration error: {name}")),
            "{name}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn it_stops_cleanly_on_a_signal() {
    let mut local = start(&[]);
    let pid = local.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = local.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "still running 10 s after SIGINT");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn with_demo_data_a_newcomer_orders_with_a_coupon() {
    let (local, report) = start_with_args(&[], &["--demo"]);
    assert_eq!(report[0], "demo admin: admin@shop.kr / admin1234");
    let tea = report[1].split_whitespace().nth(2).unwrap().to_owned();
    let source = report[4].split_whitespace().nth(3).unwrap().to_owned();

    // The demo admin is an admin: the demo grants the role on the store.
    let admin_token = demo_admin_token(&local).await;
    let (_, me) = call(
        reqwest::Method::GET,
        format!("{}/users/me", local.base),
        Some(&admin_token),
        &[],
        None,
    )
    .await;
    assert_eq!(me["role"], "admin");

    let (_, token) = sign_up_and_log_in(&local, "newcomer@shop.kr").await;
    let (status, _) = call(
        reqwest::Method::POST,
        format!("{}/balance/charge", local.base),
        Some(&token),
        &[("idempotency-key", "first")],
        Some(json!({"amount": 50_000})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, issued) = call(
        reqwest::Method::POST,
        format!("{}/coupon-sources/{source}/issue", local.base),
        Some(&token),
        &[],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    let coupon = issued["couponId"].as_str().unwrap();
    // The order service hears of the coupon through the bus: retry briefly while it is unknown.
    let deadline = Instant::now() + Duration::from_secs(10);
    let order = loop {
        let (status, body) = call(
            reqwest::Method::POST,
            format!("{}/orders", local.base),
            Some(&token),
            &[],
            Some(json!({"items": [{"productId": tea, "quantity": 4}], "couponId": coupon})),
        )
        .await;
        if status == StatusCode::CREATED {
            break body;
        }
        assert!(Instant::now() < deadline, "{status} {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        (
            order["totalAmount"].as_u64(),
            order["paymentAmount"].as_u64()
        ),
        (Some(12_000), Some(10_800))
    );
    let order_id = order["orderId"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, order) = call(
            reqwest::Method::GET,
            format!("{}/orders/{order_id}", local.base),
            Some(&token),
            &[],
            None,
        )
        .await;
        if order["status"] == "CONFIRMED" {
            break;
        }
        assert!(Instant::now() < deadline, "{order}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, balance) = call(
        reqwest::Method::GET,
        format!("{}/balance", local.base),
        Some(&token),
        &[],
        None,
    )
    .await;
    assert_eq!(balance["amount"], 39_200);
}

#[test]
fn an_unknown_argument_is_refused_with_the_usage() {
    let output = output_of(shop_local().arg("--dmeo").env("PORT", "0"));
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("usage: shop-local [--demo]"));
}

/// The shell blocks of the README's walkthroughs, exactly as written there, less those that
/// only start the system.
fn readme_walkthroughs() -> Vec<String> {
    let readme = include_str!("../../../README.md");
    let mut blocks = Vec::new();
    let mut in_walkthrough = false;
    let mut lines = readme.lines();
    while let Some(line) = lines.next() {
        if line.starts_with("## ") {
            in_walkthrough = line.starts_with("## Walkthrough");
        } else if in_walkthrough && line == "```sh" {
            let block: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
            if !block.iter().all(|l| l.starts_with("cargo run")) {
                blocks.push(block.join("\n"));
            }
        }
    }
    blocks
}

/// Runs `script` with bash (`set -euo pipefail`) to its end (within `PATIENCE`): whether it
/// succeeded, and what it printed, stdout and stderr together.
fn bash(script: &str) -> (bool, String) {
    let script = format!("set -euo pipefail\nexec 2>&1\n{script}");
    let output = output_of(Command::new("bash").arg("-c").arg(script));
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[tokio::test]
async fn the_readme_walkthroughs_run_as_written() {
    let blocks = readme_walkthroughs();
    assert_eq!(blocks.len(), 2, "sign-up and order: {blocks:#?}");
    let (local, report) = start_with_args(&[], &["--demo"]);
    let exports = report.last().expect("the export line").clone();
    assert!(
        exports.starts_with(&format!("export B={} SOURCE=", local.base)),
        "{exports}"
    );

    // Sign up, log in, who am I, and two refusals.
    let (ok, said) = bash(&format!("{exports}\n{}", blocks[0]));
    assert!(ok, "{said}");
    for answer in [
        r#""email":"kim@shop.kr","name":"Kim","role":"customer""#,
        r#""code":"UNAUTHORIZED""#,
        r#""code":"NOT_FOUND""#,
    ] {
        assert!(said.contains(answer), "{answer} not in:\n{said}");
    }

    // The order from the demo data, then its cancellation.
    let (ok, said) = bash(&format!("{exports}\n{}", blocks[1]));
    assert!(ok, "{said}");
    for answer in [
        r#""amount":50000"#,
        r#""paymentAmount":10800"#,
        "sequenceDiagram",
        "order-api  POST /orders → 201",
        r#"OrdersCreated{Service="order"} 1"#,
        r#""status":"CANCELLING""#,
    ] {
        assert!(said.contains(answer), "{answer} not in:\n{said}");
    }
    let (status, body) = post(
        &local,
        "/users/login",
        json!({"email": "lee@shop.kr", "password": "secret123"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["token"].as_str().unwrap().to_owned();
    let get = |path: &str| {
        call(
            reqwest::Method::GET,
            format!("{}{path}", local.base),
            Some(&token),
            &[],
            None,
        )
    };
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (_, orders) = get("/orders").await;
        let (_, balance) = get("/balance").await;
        let (_, coupons) = get("/coupons").await;
        let settled = orders["items"][0]["status"] == "CANCELLED"
            && balance["amount"] == 50_000
            && coupons["items"][0]["status"] == "ISSUED";
        if settled {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not back as before the order: {orders} {balance} {coupons}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
