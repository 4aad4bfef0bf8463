//! The API against its own document, by an established fuzzer: schemathesis (installed by
//! `scripts/install-tools.sh` into `.cache/schemathesis`) runs every check it has
//! (`local/tests/schemathesis.toml`) on all 26 operations of `docs/openapi.json`, against
//! the local system with the demo data: generated examples, the coverage and fuzzing
//! phases, and stateful chains along the document's links. Every secured call carries the
//! demo admin's token; the `ignored_auth` check repeats them without one and with a wrong
//! one. Bounded: `FUZZ_EXAMPLES` examples per operation (default 30), `FUZZ_SEED` (default
//! 1) for a run that can be repeated, and a deadline.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{self, request};

const DEADLINE: Duration = Duration::from_secs(600);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn setting(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_answer_that_breaks_the_document() {
    let fuzzer = root().join(".cache/schemathesis/bin/schemathesis");
    assert!(
        fuzzer.exists(),
        "{} is missing: run scripts/install-tools.sh",
        fuzzer.display()
    );
    let system = support::start(&[]).await;
    local::demo::seed(&system.system.services)
        .await
        .expect("the demo data");
    let credentials =
        json!({"email": local::demo::ADMIN_EMAIL, "password": local::demo::ADMIN_PASSWORD});
    let (status, login) = request(
        &system.base,
        Method::POST,
        "/users/login",
        None,
        Some(credentials),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{login}");
    let token = login["token"].as_str().expect("a token");

    let seed = setting("FUZZ_SEED", "1");
    let examples = setting("FUZZ_EXAMPLES", "30");
    let report = std::env::temp_dir().join(format!("shop-fuzz-{}.log", std::process::id()));
    let output = std::fs::File::create(&report).expect("a report file");
    let errors = output.try_clone().expect("the report file again");
    // Output to a file, not a pipe: the child can never block on a reader.
    let mut child = tokio::process::Command::new(&fuzzer)
        .current_dir(root())
        .args(["--config-file", "local/tests/schemathesis.toml", "run"])
        .arg("docs/openapi.json")
        .args(["--url", &system.base])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--seed", &seed, "--max-examples", &examples])
        .args(["--workers", "2", "--no-color"])
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .stdin(Stdio::null())
        .stdout(output)
        .stderr(errors)
        .kill_on_drop(true)
        .spawn()
        .expect("start schemathesis");
    let exit = tokio::time::timeout(DEADLINE, child.wait()).await;
    let text = std::fs::read_to_string(&report).unwrap_or_default();
    let _ = std::fs::remove_file(&report);
    let summary = text
        .lines()
        .skip_while(|l| !l.contains("WARNINGS") && !l.contains("SUMMARY"))
        .collect::<Vec<_>>()
        .join("\n");
    let exit = exit.unwrap_or_else(|_| panic!("schemathesis still running after {DEADLINE:?}"));
    let exit = exit.expect("schemathesis ran");
    assert!(
        exit.success(),
        "schemathesis (seed {seed}, {examples} examples) found failures:\n{text}"
    );
    assert!(summary.contains("Tested: 26"), "{summary}");
    println!("{summary}");
}
