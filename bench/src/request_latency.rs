//! The request latency model behind the bill's Lambda duration: how long one AWS request
//! takes from a Lambda function in the same region. The one place these figures live.
//!
//! They are not measured here (LocalStack on two shared cores says more about this machine
//! than about AWS): they are round, typical same-region medians as AWS describes its services
//! ("single-digit milliseconds" for DynamoDB item operations; transactions about twice an
//! item write; SNS and SQS API calls in the low tens of milliseconds). A function's modelled
//! duration is its own measured CPU time plus the sum of these over its requests, made one
//! after the other — an upper bound where a handler overlaps requests.

use std::time::Duration;

/// When the figures were chosen, to be revisited with measurements on AWS.
pub const MODEL_AS_OF: &str = "2026-12-04";

/// The modelled latency of one request (`service` as the bench's interceptors name it).
pub fn latency(service: &str, operation: &str) -> Duration {
    let ms = match (service, operation) {
        ("dynamodb", "GetItem" | "PutItem" | "DeleteItem" | "UpdateItem") => 5,
        ("dynamodb", "Query" | "BatchGetItem" | "BatchWriteItem") => 7,
        ("dynamodb", "TransactWriteItems" | "TransactGetItems") => 12,
        ("sns", _) => 15,
        _ => 10,
    };
    Duration::from_millis(ms)
}
