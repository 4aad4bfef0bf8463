//! The AWS API emulator for tests.
//!
//! By default starts moto (installed in `.venv` by `scripts/test.sh`) once per test binary,
//! on a free port on 127.0.0.1; it exits when the test process does. With
//! `AWS_ENDPOINT_URL` set, uses that endpoint instead (LocalStack, or an AWS account when
//! set to a real endpoint) with the credentials of the environment.
//!
//! A missing emulator fails the test with instructions; it never skips it.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use crate::dynamo::Client;

pub struct Emulator {
    endpoint: Option<String>,
    // Held so the emulator's stdin stays open for as long as the test process lives.
    _process: Option<Child>,
}

static EMULATOR: OnceLock<Emulator> = OnceLock::new();

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The emulator of this test process, started on first use.
pub fn emulator() -> &'static Emulator {
    EMULATOR.get_or_init(|| match std::env::var("AWS_ENDPOINT_URL") {
        Ok(url) if !url.is_empty() => Emulator {
            endpoint: None,
            _process: None,
        },
        _ => start_moto(),
    })
}

fn start_moto() -> Emulator {
    let root = workspace_root();
    let python = root.join(".venv/bin/python");
    assert!(
        python.exists(),
        "the AWS emulator is not installed ({} is missing): run scripts/test.sh, which installs moto into .venv",
        python.display()
    );
    let mut child = Command::new(&python)
        .arg(root.join("infra/emulator.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "could not start the emulator with {}: {e}",
                python.display()
            )
        });
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("the emulator said nothing");
    let endpoint = line
        .trim()
        .strip_prefix("listening ")
        .unwrap_or_else(|| panic!("the emulator did not start: {line:?}"))
        .to_owned();
    Emulator {
        endpoint: Some(endpoint),
        _process: Some(child),
    }
}

impl Emulator {
    /// A DynamoDB client for this emulator. Make one per test: a client belongs to the
    /// runtime that first uses it.
    pub async fn dynamodb(&self) -> Client {
        Client::new(&self.sdk_config().await)
    }

    /// An SDK configuration for this emulator, for any service's client.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        let loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        match &self.endpoint {
            None => loader.load().await,
            Some(endpoint) => {
                loader
                    .endpoint_url(endpoint)
                    .region(aws_config::Region::new("us-east-1"))
                    .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                        "test", "test", None, None, "emulator",
                    ))
                    .load()
                    .await
            }
        }
    }

    /// Creates a table shaped like ours (see [`crate::dynamo::create_table`]) under a name no
    /// other test uses.
    pub async fn create_table(&self, client: &Client, prefix: &str) -> String {
        let name = format!("{prefix}-{}", uuid::Uuid::new_v4().simple());
        crate::dynamo::create_table(client, &name)
            .await
            .unwrap_or_else(|e| panic!("create table {name}: {e}"));
        name
    }
}
