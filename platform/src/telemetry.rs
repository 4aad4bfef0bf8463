//! Logging: JSON lines, each carrying the function's name and, while an event is handled, its
//! `correlationId` and `eventId` (from the span the batch processor opens).

use contract::Envelope;
use tracing::Span;
use tracing_subscriber::EnvFilter;

/// Where log lines go.
#[derive(Debug, Clone, Copy)]
pub enum LogTarget {
    /// Lambda: stdout, which CloudWatch Logs collects.
    Stdout,
    /// The local system: stderr, so stdout stays for what the program tells its user.
    Stderr,
}

/// Installs the JSON subscriber (level from `RUST_LOG`, default `info`). A second call
/// does nothing.
pub fn init(target: LogTarget) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false);
    let _ = match target {
        LogTarget::Stdout => builder.with_writer(std::io::stdout).try_init(),
        LogTarget::Stderr => builder.with_writer(std::io::stderr).try_init(),
    };
}

/// The span for handling one event in one function.
pub fn event_span(function: &str, event: &Envelope) -> Span {
    tracing::info_span!(
        "event",
        function,
        correlationId = %event.correlation_id,
        eventId = %event.event_id,
        r#type = event.event_type().name(),
    )
}

/// The span for a long-running function, e.g. a relay: its log lines carry its name.
pub fn function_span(function: &str) -> Span {
    tracing::info_span!("function", function)
}

/// The span for one HTTP request served by one function.
pub fn request_span(function: &str, method: &str, path: &str) -> Span {
    tracing::info_span!(
        "request",
        function,
        method,
        path,
        correlationId = tracing::field::Empty
    )
}
