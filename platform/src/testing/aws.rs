//! The AWS endpoint of the integration tests.
//!
//! By default starts LocalStack (installed into `.cache/localstack` by `scripts/test.sh`) once
//! per test process, on a free port on 127.0.0.1; it stops when the test process ends, however
//! it ends (it watches its standard input). With `AWS_ENDPOINT_URL` set, uses that endpoint
//! instead (another LocalStack, or AWS itself) with the region and credentials of the
//! environment.
//!
//! Every table, topic and queue a test creates is named uniquely and deleted when the test
//! is done with it ([`TestTable`], [`Cleanup`]), so a long-lived endpoint survives any number
//! of runs. Without LocalStack installed a test fails with instructions; it never skips.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::dynamo::Client;

/// How long LocalStack may take to start (the first start on a loaded machine is the slowest).
const START_DEADLINE: Duration = Duration::from_secs(180);

pub struct TestEndpoint {
    /// `None`: the environment's own configuration (`AWS_ENDPOINT_URL`, region, credentials).
    endpoint: Option<String>,
    // Held so LocalStack's standard input stays open for as long as the test process lives.
    _process: Option<Mutex<Child>>,
}

static ENDPOINT: OnceLock<TestEndpoint> = OnceLock::new();

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The endpoint of this test process; LocalStack is started on first use.
pub fn endpoint() -> &'static TestEndpoint {
    ENDPOINT.get_or_init(|| match std::env::var("AWS_ENDPOINT_URL") {
        Ok(url) if !url.is_empty() => TestEndpoint {
            endpoint: None,
            _process: None,
        },
        _ => start_localstack(),
    })
}

fn start_localstack() -> TestEndpoint {
    let root = workspace_root();
    let installed = std::fs::read_dir(root.join(".cache/localstack"))
        .map(|dir| {
            dir.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with(".installed-"))
        })
        .unwrap_or(false);
    assert!(
        installed,
        "LocalStack is not installed in {}: run scripts/test.sh (or scripts/install-localstack.sh), \
         or set AWS_ENDPOINT_URL to an endpoint of your own",
        root.join(".cache/localstack").display()
    );
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port on 127.0.0.1: {e}"));
    let mut command = Command::new(root.join("infra/localstack/run"));
    command
        .arg(port.to_string())
        .arg("--until-stdin-closes")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("could not start infra/localstack/run: {e}"));
    let log = root.join(format!(".cache/localstack/logs/{port}.log"));
    let started = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "LocalStack exited ({status}) before it was ready; the end of {}:\n{}",
                log.display(),
                log_tail(&log)
            );
        }
        if services_running(port) {
            break;
        }
        if started.elapsed() > START_DEADLINE {
            let _ = child.kill();
            panic!(
                "LocalStack was not ready within {START_DEADLINE:?}; the end of {}:\n{}",
                log.display(),
                log_tail(&log)
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!(
        "LocalStack ready on 127.0.0.1:{port} in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    TestEndpoint {
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        _process: Some(Mutex::new(child)),
    }
}

/// Whether LocalStack on `port` reports every service we use as running. Plain HTTP with
/// timeouts, so a half-started server cannot hang the test.
fn services_running(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(
        &(Ipv4Addr::LOCALHOST, port).into(),
        Duration::from_millis(500),
    ) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    let request = "GET /_localstack/health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut answer = String::new();
    if stream.read_to_string(&mut answer).is_err() {
        return false;
    }
    let Some(body) = answer.split("\r\n\r\n").nth(1) else {
        return false;
    };
    let Ok(health) = serde_json::from_str::<serde_json::Value>(body) else {
        return false;
    };
    ["dynamodb", "dynamodbstreams", "sns", "sqs"]
        .iter()
        .all(|s| health["services"][s] == "running")
}

fn log_tail(path: &std::path::Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

impl TestEndpoint {
    /// A DynamoDB client for this endpoint. Make one per test: a client belongs to the
    /// runtime that first uses it.
    pub async fn dynamodb(&self) -> Client {
        Client::new(&self.sdk_config().await)
    }

    /// An SDK configuration for this endpoint, for any service's client.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        let loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        match &self.endpoint {
            None => loader.load().await,
            Some(endpoint) => {
                loader
                    .endpoint_url(endpoint)
                    .region(aws_config::Region::new("us-east-1"))
                    .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                        "test",
                        "test",
                        None,
                        None,
                        "localstack",
                    ))
                    .load()
                    .await
            }
        }
    }

    /// The endpoint URL, for a child process (`None`: the environment's own).
    pub fn url(&self) -> Option<&str> {
        self.endpoint.as_deref()
    }

    /// A table shaped like ours (see [`crate::dynamo::create_table`]) under a name no other
    /// test uses, deleted when the returned value is dropped.
    pub async fn table(&'static self, client: &Client, prefix: &str) -> TestTable {
        let name = unique_name(prefix);
        let cleanup = Cleanup::new(self);
        cleanup.table(&name);
        let streams = aws_sdk_dynamodbstreams::Client::new(&self.sdk_config().await);
        crate::dynamo::create_table(client, &streams, &name)
            .await
            .unwrap_or_else(|e| panic!("create table {name}: {e}"));
        TestTable { name, cleanup }
    }
}

/// `prefix` and a part of its own: unique per test and per run.
pub fn unique_name(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &id[..12])
}

/// A table of one test's, deleted when dropped.
pub struct TestTable {
    pub name: String,
    cleanup: Cleanup,
}

impl TestTable {
    /// Keeps something else of the test's until the table goes (e.g. its topic).
    pub fn cleanup(&self) -> &Cleanup {
        &self.cleanup
    }
}

/// What a test created: deleted when this is dropped, also when the test fails. The deletes
/// run on a runtime of their own, since a drop cannot wait on the test's.
pub struct Cleanup {
    endpoint: &'static TestEndpoint,
    resources: Mutex<Resources>,
}

#[derive(Default, Clone)]
struct Resources {
    tables: Vec<String>,
    topics: Vec<String>,
    queues: Vec<String>,
}

impl Cleanup {
    pub fn new(endpoint: &'static TestEndpoint) -> Cleanup {
        Cleanup {
            endpoint,
            resources: Mutex::new(Resources::default()),
        }
    }

    fn with(&self, add: impl FnOnce(&mut Resources)) {
        if let Ok(mut resources) = self.resources.lock() {
            add(&mut resources);
        }
    }

    pub fn table(&self, name: &str) {
        self.with(|r| r.tables.push(name.to_owned()));
    }

    pub fn topic(&self, arn: &str) {
        self.with(|r| r.topics.push(arn.to_owned()));
    }

    pub fn queue(&self, url: &str) {
        self.with(|r| r.queues.push(url.to_owned()));
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let resources = self.resources.lock().map(|r| r.clone()).unwrap_or_default();
        let endpoint = self.endpoint;
        let deleting = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(delete(endpoint, resources));
        });
        let _ = deleting.join();
    }
}

/// Deletes what a test created; a failure is reported, not raised (the test has its verdict).
async fn delete(endpoint: &TestEndpoint, resources: Resources) {
    let sdk = endpoint.sdk_config().await;
    let dynamodb = Client::new(&sdk);
    let sns = aws_sdk_sns::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    for table in &resources.tables {
        if let Err(e) = dynamodb.delete_table().table_name(table).send().await {
            let missing = e
                .as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception());
            if !missing {
                eprintln!("cleanup: could not delete table {table}: {e}");
            }
        }
    }
    for topic in &resources.topics {
        // Deleting a topic deletes its subscriptions.
        if let Err(e) = sns.delete_topic().topic_arn(topic).send().await {
            eprintln!("cleanup: could not delete topic {topic}: {e}");
        }
    }
    for queue in &resources.queues {
        if let Err(e) = sqs.delete_queue().queue_url(queue).send().await {
            let missing = e
                .as_service_error()
                .is_some_and(|e| e.is_queue_does_not_exist());
            if !missing {
                eprintln!("cleanup: could not delete queue {queue}: {e}");
            }
        }
    }
}
