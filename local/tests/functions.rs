//! The Lambda functions agree with the topology: one main per consuming queue (naming its
//! queue), an API and a relay per service, the sweep and the authorizer, and nothing else;
//! every binary `template.yaml` names exists.

use std::collections::BTreeSet;
use std::path::PathBuf;

use contract::Service;
use local::topology::CONSUMERS;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `(service directory, binary name)` of every `functions/*/src/bin/*.rs`.
fn binaries() -> BTreeSet<(String, String)> {
    let mut found = BTreeSet::new();
    for service in std::fs::read_dir(root().join("functions")).unwrap() {
        let service = service.unwrap().path();
        let Ok(bins) = std::fs::read_dir(service.join("src/bin")) else {
            continue;
        };
        for bin in bins {
            let bin = bin.unwrap().path();
            let name = bin.file_stem().unwrap().to_string_lossy().into_owned();
            found.insert((
                service.file_name().unwrap().to_string_lossy().into_owned(),
                name,
            ));
        }
    }
    found
}

fn expected() -> BTreeSet<(String, String)> {
    let mut expected = BTreeSet::new();
    for service in Service::ALL {
        let dir = service.name().to_owned();
        expected.insert((dir.clone(), format!("{dir}-api")));
        expected.insert((dir.clone(), format!("{dir}-relay")));
    }
    for consumer in CONSUMERS {
        expected.insert((
            consumer.service.name().to_owned(),
            consumer.queue.to_owned(),
        ));
    }
    expected.insert(("order".into(), "order-sweep".into()));
    expected.insert(("user".into(), "user-authorizer".into()));
    expected
}

#[test]
fn every_function_has_a_main_and_every_main_a_function() {
    assert_eq!(binaries(), expected());
}

#[test]
fn each_consumer_main_names_its_queue() {
    for consumer in CONSUMERS {
        let path = root().join(format!(
            "functions/{}/src/bin/{}.rs",
            consumer.service.name(),
            consumer.queue
        ));
        let source = std::fs::read_to_string(&path).unwrap();
        assert!(
            source.contains(&format!("\"{}\"", consumer.queue)),
            "{} does not run queue {}",
            path.display(),
            consumer.queue
        );
    }
}

#[test]
fn every_function_in_the_template_has_a_binary_and_every_binary_a_function() {
    let template = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    let named: BTreeSet<String> = template
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Binary: "))
        .map(str::to_owned)
        .collect();
    let bins: BTreeSet<String> = binaries().into_iter().map(|(_, b)| b).collect();
    assert_eq!(named, bins);
}

/// The template's resources: logical id → the lines of its block.
fn resources() -> Vec<(String, Vec<String>)> {
    let template = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    let mut blocks: Vec<(String, Vec<String>)> = Vec::new();
    let mut inside = false;
    for line in template.lines() {
        if !line.starts_with(' ') && !line.is_empty() {
            inside = line == "Resources:";
            continue;
        }
        if !inside {
            continue;
        }
        let is_id = line.starts_with("  ")
            && !line.starts_with("   ")
            && line.trim_end().ends_with(':')
            && !line.trim().starts_with('#');
        if is_id {
            blocks.push((line.trim().trim_end_matches(':').to_owned(), Vec::new()));
        } else if let Some((_, lines)) = blocks.last_mut() {
            lines.push(line.trim().to_owned());
        }
    }
    blocks
}

fn camel(name: &str) -> String {
    name.split('-')
        .map(|p| p[..1].to_uppercase() + &p[1..])
        .collect()
}

fn value<'a>(lines: &'a [String], key: &str) -> Option<&'a str> {
    lines
        .iter()
        .find_map(|l| l.strip_prefix(key))
        .map(str::trim)
}

#[test]
fn the_template_subscribes_every_queue_as_the_topology_says() {
    let resources = resources();
    let mut in_template = BTreeSet::new();
    for (_, lines) in &resources {
        if value(lines, "Type:") != Some("AWS::SNS::Subscription") {
            continue;
        }
        let topic = value(lines, "TopicArn: !Ref ")
            .unwrap()
            .trim_end_matches("Topic")
            .to_owned();
        let queue = value(lines, "Endpoint: !GetAtt ")
            .unwrap()
            .trim_end_matches(".Arn")
            .trim_end_matches("Queue")
            .to_owned();
        let filter: serde_json::Value =
            serde_json::from_str(value(lines, "FilterPolicy:").unwrap().trim_matches('\''))
                .unwrap();
        let mut types: Vec<String> = filter["type"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_owned())
            .collect();
        types.sort();
        assert_eq!(
            value(lines, "RawMessageDelivery:"),
            Some("true"),
            "{queue} from {topic}"
        );
        in_template.insert((queue, topic, types));
    }
    let mut in_topology = BTreeSet::new();
    for consumer in CONSUMERS {
        for (topic, types) in consumer.subscriptions {
            let mut types: Vec<String> = types.iter().map(|t| (*t).to_owned()).collect();
            types.sort();
            in_topology.insert((camel(consumer.queue), camel(topic.name()), types));
        }
    }
    assert_eq!(in_template, in_topology);
}

#[test]
fn every_queue_has_a_dead_letter_queue_an_alarm_and_its_function() {
    let resources = resources();
    let find = |id: &str| {
        resources
            .iter()
            .find(|(r, _)| r == id)
            .map(|(_, l)| l.clone())
    };
    for consumer in CONSUMERS {
        let q = camel(consumer.queue);
        let queue = find(&format!("{q}Queue")).unwrap_or_else(|| panic!("no {q}Queue"));
        assert_eq!(
            value(&queue, "deadLetterTargetArn: !GetAtt "),
            Some(format!("{q}DeadLetters.Arn").as_str())
        );
        assert!(value(&queue, "maxReceiveCount:").is_some());
        let visibility: u32 = value(&queue, "VisibilityTimeout:")
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            visibility > 10 * 3,
            "{q}: visibility timeout {visibility} must be well above the function timeout"
        );
        assert!(
            find(&format!("{q}DeadLettersAlarm")).is_some(),
            "no alarm on {q}'s DLQ"
        );
        let function = find(&format!("{q}Function")).unwrap_or_else(|| panic!("no {q}Function"));
        assert_eq!(value(&function, "Binary:"), Some(consumer.queue));
        assert_eq!(
            value(&function, "Queue: !GetAtt "),
            Some(format!("{q}Queue.Arn").as_str())
        );
        assert!(
            function
                .iter()
                .any(|l| l.contains("ReportBatchItemFailures"))
        );
    }
}

#[test]
fn each_function_names_only_its_own_domain_resources() {
    for (id, lines) in resources() {
        if value(&lines, "Type:") != Some("AWS::Serverless::Function") {
            continue;
        }
        let binary = value(&lines, "Binary:").unwrap();
        let domain = Service::ALL
            .iter()
            .filter(|s| binary.starts_with(&format!("{}-", s.name())))
            .max_by_key(|s| s.name().len())
            .unwrap_or_else(|| panic!("{binary} belongs to no service"));
        let own = camel(domain.name());
        for line in &lines {
            for word in line.split(|c: char| !c.is_alphanumeric()) {
                for kind in ["Table", "Topic"] {
                    if let Some(prefix) = word.strip_suffix(kind)
                        && !prefix.is_empty()
                        && word != format!("{own}{kind}")
                        && !(kind == "Topic" && line.starts_with("TopicArn"))
                    {
                        panic!(
                            "{id} ({binary}) names {word}, which is not the {} service's",
                            domain.name()
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn every_function_has_a_sample_event() {
    for (_, binary) in binaries() {
        assert!(
            root().join(format!("events/{binary}.json")).exists(),
            "no events/{binary}.json"
        );
    }
}

#[test]
fn the_local_event_source_mappings_batch_as_the_template_says() {
    let mut sqs_sources = 0;
    for (id, lines) in resources() {
        // An SQS event source (a relay names an SQS queue only as its on-failure target).
        let is_stream = lines.iter().any(|l| l.starts_with("StartingPosition:"));
        if is_stream || !lines.iter().any(|l| l == "Type: SQS") {
            continue;
        }
        sqs_sources += 1;
        assert_eq!(
            value(&lines, "BatchSize:"),
            Some(local::topology::SQS_BATCH_SIZE.to_string().as_str()),
            "{id}: the batch size the local event source mappings use"
        );
        assert_eq!(
            value(&lines, "MaximumBatchingWindowInSeconds:"),
            None,
            "{id}: the local event source mappings have no batching window"
        );
    }
    assert_eq!(sqs_sources, local::topology::CONSUMERS.len());
}

#[test]
fn messages_are_encrypted_and_no_function_holds_a_key_or_a_broad_policy() {
    let mut topics = 0;
    let mut queues = 0;
    for (id, lines) in resources() {
        match value(&lines, "Type:") {
            Some("AWS::SNS::Topic") => {
                topics += 1;
                assert_eq!(
                    value(&lines, "KmsMasterKeyId:"),
                    Some("alias/aws/sns"),
                    "{id}"
                );
            }
            Some("AWS::SQS::Queue") => {
                queues += 1;
                assert_eq!(value(&lines, "SqsManagedSseEnabled:"), Some("true"), "{id}");
            }
            Some("AWS::Serverless::Function") => {
                for line in &lines {
                    for forbidden in ["JWT_SECRET", "ADMIN_EMAILS", "resolve:ssm", "CrudPolicy"] {
                        assert!(!line.contains(forbidden), "{id}: {line}");
                    }
                    assert!(!line.contains("dynamodb:*"), "{id}: {line}");
                }
                // Only the two functions that handle tokens may read the signing keys.
                let reads_keys = lines.iter().any(|l| l.contains("ssm:GetParameter"));
                let binary = value(&lines, "Binary:").unwrap_or_default();
                assert_eq!(
                    reads_keys,
                    matches!(binary, "user-api" | "user-authorizer"),
                    "{id}"
                );
            }
            _ => {}
        }
    }
    assert_eq!((topics, queues > 0), (Service::ALL.len(), true));
}
