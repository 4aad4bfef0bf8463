//! The price table: us-east-1 list prices, in US dollars, without free tiers. The one place
//! prices live; change them here (and the date) when AWS changes them.

/// When these prices were read off the AWS pricing pages.
pub const PRICES_AS_OF: &str = "2026-11-25";

pub struct Prices {
    /// API Gateway HTTP API, per million requests (first 300 million a month).
    pub http_api_request: f64,
    /// Lambda, per million requests.
    pub lambda_request: f64,
    /// Lambda on arm64 (Graviton), per GB-second (first 6 billion GB-seconds a month).
    pub lambda_arm64_gb_second: f64,
    /// SNS standard topic, per million API requests (each 64 KiB of payload is one request).
    pub sns_request: f64,
    /// SQS standard queue, per million requests (each 64 KiB of payload is one request).
    pub sqs_request: f64,
    /// DynamoDB on-demand, per million write request units (1 KiB each; transactional: 2).
    pub dynamodb_write_unit: f64,
    /// DynamoDB on-demand, per million read request units (4 KiB strongly consistent, or
    /// two eventually consistent reads; transactional: 2).
    pub dynamodb_read_unit: f64,
}

pub const US_EAST_1: Prices = Prices {
    http_api_request: 1.00,
    lambda_request: 0.20,
    lambda_arm64_gb_second: 0.000_013_333_4,
    sns_request: 0.50,
    sqs_request: 0.40,
    dynamodb_write_unit: 0.625,
    dynamodb_read_unit: 0.125,
};
