//! Cold starts: every function's release binary, started as Lambda starts it, against a
//! minimal Runtime API on 127.0.0.1. Measured: the time from exec to its first
//! `GET /2018-06-01/runtime/invocation/next` (initialisation), then its sample event
//! (events/<function>.json) handled against LocalStack's tables, topics and queues, and
//! the process's peak memory when it answers. A hello-world `lambda_runtime` binary, built
//! with the same profile in the same run, is the baseline.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use local::aws::Names;
use local::lambda_dev::{function_environment, lambda_environment};
use local::template::Function;
use tokio::sync::mpsc;

use crate::measure::{self, ms};
use crate::shop::BenchResult;
use crate::size;

const RUNTIME: &str = "/2018-06-01/runtime";

/// What the stub saw of the function being started.
#[derive(Debug)]
enum Seen {
    Next(Instant),
    /// The answer to the event (true: a response; false: an error report), with the
    /// process's peak memory then.
    Answered(Instant, bool, Option<u64>),
    InitError(String),
}

#[derive(Default)]
struct Current {
    pid: Option<u32>,
    event: String,
    nexts: u32,
}

#[derive(Clone)]
struct Stub {
    current: Arc<Mutex<Current>>,
    seen: mpsc::UnboundedSender<Seen>,
}

async fn next(State(stub): State<Stub>) -> Response {
    let now = Instant::now();
    let (first, event) = {
        let mut c = stub.current.lock().unwrap_or_else(|p| p.into_inner());
        c.nexts += 1;
        (c.nexts == 1, c.event.clone())
    };
    if !first {
        // One event per start: the process waits here until it is stopped.
        std::future::pending::<()>().await;
    }
    let _ = stub.seen.send(Seen::Next(now));
    let mut headers = HeaderMap::new();
    let deadline = chrono::Utc::now().timestamp_millis() + 10_000;
    for (name, value) in [
        (
            "lambda-runtime-aws-request-id",
            "bench-request-1".to_owned(),
        ),
        ("lambda-runtime-deadline-ms", deadline.to_string()),
        (
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:bench".to_owned(),
        ),
        (
            "lambda-runtime-trace-id",
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0".to_owned(),
        ),
        ("content-type", "application/json".to_owned()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    }
    (StatusCode::OK, headers, event).into_response()
}

fn answered(stub: &Stub, ok: bool) -> StatusCode {
    let now = Instant::now();
    let pid = stub.current.lock().unwrap_or_else(|p| p.into_inner()).pid;
    let peak = pid.and_then(|pid| measure::status_kib(&pid.to_string(), "VmHWM"));
    let _ = stub.seen.send(Seen::Answered(now, ok, peak));
    StatusCode::ACCEPTED
}

async fn response(State(stub): State<Stub>) -> StatusCode {
    answered(&stub, true)
}

async fn error(State(stub): State<Stub>) -> StatusCode {
    answered(&stub, false)
}

async fn init_error(State(stub): State<Stub>, body: String) -> StatusCode {
    let _ = stub.seen.send(Seen::InitError(body));
    StatusCode::ACCEPTED
}

/// One start of one binary.
struct Start {
    init: Duration,
    first_event: Duration,
    answered_ok: bool,
    peak_kib: Option<u64>,
}

struct Runner {
    stub: Stub,
    seen: mpsc::UnboundedReceiver<Seen>,
    address: String,
}

impl Runner {
    async fn start() -> BenchResult<Runner> {
        let (tx, seen) = mpsc::unbounded_channel();
        let stub = Stub {
            current: Arc::default(),
            seen: tx,
        };
        let app = Router::new()
            .route(&format!("{RUNTIME}/invocation/next"), get(next))
            .route(
                &format!("{RUNTIME}/invocation/{{id}}/response"),
                post(response),
            )
            .route(&format!("{RUNTIME}/invocation/{{id}}/error"), post(error))
            .route(&format!("{RUNTIME}/init/error"), post(init_error))
            .with_state(stub.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let address = listener
            .local_addr()
            .map_err(|e| e.to_string())?
            .to_string();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Runner {
            stub,
            seen,
            address,
        })
    }

    /// Starts `binary` with `env`, hands it `event`, and stops it once it answered.
    async fn once(
        &mut self,
        binary: &Path,
        env: &HashMap<String, String>,
        event: &str,
    ) -> BenchResult<Start> {
        {
            let mut c = self.stub.current.lock().unwrap_or_else(|p| p.into_inner());
            *c = Current {
                pid: None,
                event: event.to_owned(),
                nexts: 0,
            };
        }
        while self.seen.try_recv().is_ok() {}
        let mut command = tokio::process::Command::new(binary);
        command
            .envs(env)
            .env("AWS_LAMBDA_RUNTIME_API", &self.address)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let spawned = Instant::now();
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        self.stub
            .current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pid = child.id();
        let result = self.follow(spawned, &mut child).await;
        let _ = child.kill().await;
        result
    }

    async fn follow(
        &mut self,
        spawned: Instant,
        child: &mut tokio::process::Child,
    ) -> BenchResult<Start> {
        let mut init = None;
        let limit = tokio::time::sleep(Duration::from_secs(30));
        tokio::pin!(limit);
        loop {
            tokio::select! {
                seen = self.seen.recv() => match seen {
                    Some(Seen::Next(at)) => init = Some(at - spawned),
                    Some(Seen::Answered(at, ok, peak_kib)) => {
                        let init = init.ok_or("answered before asking for an event")?;
                        return Ok(Start {
                            init,
                            first_event: at - spawned - init,
                            answered_ok: ok,
                            peak_kib,
                        });
                    }
                    Some(Seen::InitError(body)) => return Err(format!("init error: {body}")),
                    None => return Err("the stub stopped".to_owned()),
                },
                status = child.wait() => {
                    return Err(format!("exited before answering ({})", status.map_err(|e| e.to_string())?));
                }
                _ = &mut limit => return Err("no answer within 30 s".to_owned()),
            }
        }
    }
}

/// The SSM parameter the user functions read their signing keys from at start, as on AWS.
const KEYS_PARAMETER: &str = "/shop-bench/jwt-keys";

async fn signing_keys_parameter(sdk: &aws_config::SdkConfig) -> BenchResult<()> {
    let keys =
        r#"{"current": "bench", "keys": {"bench": "benchmark-secret-of-at-least-32-bytes!"}}"#;
    aws_sdk_ssm::Client::new(sdk)
        .put_parameter()
        .name(KEYS_PARAMETER)
        .value(keys)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .map_err(|e| {
            format!(
                "the signing keys parameter: {}",
                aws_sdk_ssm::error::DisplayErrorContext(&e)
            )
        })?;
    Ok(())
}

/// The environment `template.yaml` gives a function, pointed at LocalStack's resources, with
/// what Lambda sets (`local::lambda_dev`, as `scripts/lambda-dev.sh` runs a function).
fn environment(
    function: &Function,
    names: &Names,
    sdk: &aws_config::SdkConfig,
) -> BenchResult<HashMap<String, String>> {
    let mut env = lambda_environment(&function.name, sdk);
    env.extend(function_environment(function, names)?);
    // The parameter the bench wrote, rather than the template's default name.
    if env.contains_key("JWT_KEYS_PARAMETER") {
        env.insert("JWT_KEYS_PARAMETER".to_owned(), KEYS_PARAMETER.to_owned());
    }
    Ok(env.into_iter().collect())
}

struct Measured {
    function: String,
    starts: Vec<Start>,
}

impl Measured {
    fn median_init(&self) -> Duration {
        let mut v: Vec<Duration> = self.starts.iter().map(|s| s.init).collect();
        v.sort();
        measure::percentile(&v, 50.0)
    }

    fn median_first_event(&self) -> Duration {
        let mut v: Vec<Duration> = self.starts.iter().map(|s| s.first_event).collect();
        v.sort();
        measure::percentile(&v, 50.0)
    }

    fn peak_mib(&self) -> Option<f64> {
        self.starts
            .iter()
            .filter_map(|s| s.peak_kib)
            .max()
            .map(|k| k as f64 / 1024.0)
    }
}

/// `build`: build the release binaries first (else measure those already in target/release).
pub async fn cold_start(runs: usize, build: bool) -> BenchResult<String> {
    let release = if build {
        size::build_release_here()?
    } else {
        size::root().join("target/release")
    };
    let at = crate::bill::provisioned("cold-start").await?;
    let (sdk, names) = (&at.sdk, &at.names);
    signing_keys_parameter(sdk).await?;
    let mut runner = Runner::start().await?;
    let mut measured = Vec::new();
    let mut targets = vec![(
        "hello-lambda".to_owned(),
        release.join("hello-lambda"),
        lambda_environment("hello-lambda", sdk)
            .into_iter()
            .collect(),
        "{\"hello\": \"world\"}".to_owned(),
    )];
    for function in size::functions()? {
        let name = &function.name;
        let event = std::fs::read_to_string(size::root().join(format!("events/{name}.json")))
            .map_err(|e| format!("events/{name}.json: {e}"))?;
        let env = environment(&function, names, sdk)?;
        targets.push((name.clone(), release.join(&function.binary), env, event));
    }
    for (function, binary, env, event) in &targets {
        eprintln!("cold start: {function}…");
        let mut starts = Vec::new();
        for _ in 0..runs {
            let start = runner
                .once(binary, env, event)
                .await
                .map_err(|e| format!("{function}: {e}"))?;
            starts.push(start);
        }
        measured.push(Measured {
            function: function.clone(),
            starts,
        });
    }
    let hello = measured
        .first()
        .map(Measured::median_init)
        .unwrap_or_default();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## Cold start\n\nEach release binary (this machine's architecture) started {runs} times against a Runtime API stub on 127.0.0.1 (`bench cold-start --runs {runs}`); medians. *Init* is exec → first `GET …/invocation/next`; *first event* is that → the answer to its sample event, handled against LocalStack; *peak memory* is the process's peak resident size when it answered.\n"
    );
    let _ = writeln!(
        out,
        "| function | init | × hello-lambda | first event | answer | peak memory |"
    );
    let _ = writeln!(out, "| --- | ---: | ---: | ---: | --- | ---: |");
    for m in &measured {
        let ok = m.starts.iter().filter(|s| s.answered_ok).count();
        let _ = writeln!(
            out,
            "| {} | {} | {:.2} | {} | {} | {} |",
            m.function,
            ms(m.median_init()),
            m.median_init().as_secs_f64() / hello.as_secs_f64().max(1e-9),
            ms(m.median_first_event()),
            if ok == m.starts.len() {
                "response".to_owned()
            } else {
                format!("error {}/{}", m.starts.len() - ok, m.starts.len())
            },
            measure::mib(m.peak_mib())
        );
    }
    let _ = writeln!(out);
    Ok(out)
}
