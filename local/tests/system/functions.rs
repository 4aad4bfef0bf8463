//! `template.yaml` as the local system reads it: every function's handler has code and every
//! binary a function; what a user adds to the template runs locally with no second edit;
//! what the local system cannot apply is refused by name; and the template's own rules
//! (dead-letter queues and alarms, encryption, least privilege).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use contract::Service;
use local::config::LocalConfig;
use local::registry::{self, RegistryError};
use local::system::{BuildError, World};
use local::template::{Stack, TEMPLATE, Trigger};
use platform::clock::SystemClock;
use platform::docstore::memory::MemoryDocStore;
use platform::ids::SequentialIds;
use platform::ports::Ports;
use user_service::app::SignUpError;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every `src/bin/*.rs` of the workspace's function crates and of the platform.
fn binaries() -> BTreeSet<String> {
    let mut folders: Vec<PathBuf> = std::fs::read_dir(root().join("functions"))
        .unwrap()
        .map(|f| f.unwrap().path())
        .collect();
    folders.push(root().join("platform"));
    let mut found = BTreeSet::new();
    for folder in folders {
        let Ok(bins) = std::fs::read_dir(folder.join("src/bin")) else {
            continue;
        };
        for bin in bins {
            let bin = bin.unwrap().path();
            found.insert(bin.file_stem().unwrap().to_string_lossy().into_owned());
        }
    }
    found
}

fn world_on(stack: Stack) -> Result<World, BuildError> {
    world_with(stack, &[])
}

fn world_with(stack: Stack, settings: &[(&str, &str)]) -> Result<World, BuildError> {
    let mut env = HashMap::from([("JWT_SECRET", "template-test-secret-of-32-bytes-at-least")]);
    env.extend(settings.iter().copied());
    let ids = Arc::new(SequentialIds::new("id"));
    World::build_on(
        stack,
        LocalConfig::from_env(&env).unwrap(),
        Arc::new(SystemClock),
        ids.clone(),
        |_, outbox| {
            Ports::new(
                Arc::new(MemoryDocStore::new(outbox)),
                Arc::new(SystemClock),
                ids.clone(),
            )
        },
    )
}

#[test]
fn every_function_runs_code_that_exists_and_every_binary_serves_a_function() {
    let stack = Stack::load().unwrap();
    registry::check(&stack).unwrap();
    let named: BTreeSet<String> = stack.functions.iter().map(|f| f.binary.clone()).collect();
    assert_eq!(named, binaries());
    assert_eq!(stack.functions.len(), 31);
    assert_eq!(
        named.len(),
        9,
        "one binary per service, the authorizer and the relay"
    );
}

#[test]
fn each_function_s_handler_is_one_its_binary_runs() {
    let runs: BTreeMap<&str, &[&str]> = BTreeMap::from([
        ("user", &[user_service::functions::API][..]),
        (
            "user-authorizer",
            &[user_service::functions::AUTHORIZER][..],
        ),
        ("relay", &[platform::lambda::RELAY][..]),
        ("balance", balance_service::functions::HANDLERS),
        ("product", product_service::functions::HANDLERS),
        ("coupon-source", coupon_source_service::functions::HANDLERS),
        ("coupon", coupon_service::functions::HANDLERS),
        ("payment", payment_service::functions::HANDLERS),
        ("order", order_service::functions::HANDLERS),
    ]);
    let mut served = BTreeSet::new();
    for function in Stack::load().unwrap().functions {
        let handlers = runs
            .get(function.binary.as_str())
            .unwrap_or_else(|| panic!("{}: no binary {}", function.id, function.binary));
        assert!(
            handlers.contains(&function.handler.as_str()),
            "{} runs {} with HANDLER {}, which it does not run",
            function.id,
            function.binary,
            function.handler
        );
        served.insert(function.handler);
    }
    for handler in runs.values().flat_map(|h| h.iter()) {
        assert!(served.contains(*handler), "no function runs {handler}");
    }
}

#[test]
fn every_function_has_a_sample_event() {
    for function in Stack::load().unwrap().functions {
        let path = root().join(format!("events/{}.json", function.name));
        assert!(path.exists(), "no {}", path.display());
    }
}

#[test]
fn an_unknown_handler_or_one_no_function_runs_is_refused_naming_both() {
    let typo = TEMPLATE.replacen("HANDLER: product-events", "HANDLER: product-evnts", 1);
    let error = world_on(Stack::parse(&typo).unwrap())
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("ProductOrderCreatedFunction"), "{error}");
    assert!(error.contains("\"product-evnts\""), "{error}");
    assert!(
        error.contains("product-events"),
        "the known handlers are listed: {error}"
    );

    let mut stack = Stack::load().unwrap();
    stack.functions.retain(|f| f.handler != "order-sweep");
    assert_eq!(
        registry::check(&stack),
        Err(RegistryError::Unused {
            handler: "order-sweep".into()
        })
    );

    let twice = TEMPLATE.replacen("HANDLER: balance-api", "HANDLER: product-api", 1);
    let error = registry::check(&Stack::parse(&twice).unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("BalanceApiFunction") && error.contains("ProductApiFunction"),
        "{error}"
    );

    let misplaced = TEMPLATE.replacen("HANDLER: order-sweep", "HANDLER: order-events", 1);
    let error = registry::check(&Stack::parse(&misplaced).unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("OrderSweepFunction") && error.contains("an SQS queue"),
        "{error}"
    );
}

#[test]
fn what_the_local_system_cannot_apply_is_refused_by_name() {
    for (from, to, says) in [
        (
            "TOPIC_ARN: !Ref UserTopic",
            "TOPIC_ARN: !Sub \"${UserTopic}\"",
            "UserRelayFunction.Properties.Environment.Variables.TOPIC_ARN: !Sub is not understood locally",
        ),
        (
            "Queue: !GetAtt BalanceUserRegisteredQueue.Arn",
            "Queue: !GetAtt BalanceUserRegisteredQueu.Arn",
            "BalanceUserRegisteredQueu is not declared",
        ),
        (
            "FilterPolicy: '{\"type\": [\"UserRegistered\"]}'",
            "FilterPolicy: '{\"type\": [{\"prefix\": \"User\"}]}'",
            "BalanceUserRegisteredFromUser.Properties.FilterPolicy",
        ),
        (
            "MaximumConcurrency: !Ref ConsumerMaxConcurrency",
            "MaximumConcurrency: 1",
            "MaximumConcurrency 1 is outside 2..=1000",
        ),
        (
            "            BatchSize: 10\n",
            "            BatchSize: 10\n            MaximumBatchingWindowInSeconds: 301\n",
            "MaximumBatchingWindowInSeconds 301 is over 300",
        ),
        (
            "ScheduleExpression: rate(1 minute)",
            "ScheduleExpression: cron(0 * * * ? *)",
            "only rate(<n> <unit>) schedules are run locally",
        ),
        (
            "Projection: { ProjectionType: KEYS_ONLY }",
            "Projection: { ProjectionType: ALL }",
            "ProjectionType ALL; the document store reads its indexes as KEYS_ONLY",
        ),
        (
            "{\"exists\": true}",
            "{\"anything-but\": \"OUTBOX#\"}",
            "UserRelayFunction.Properties.Events.Outbox.FilterCriteria.Filters[0].Pattern",
        ),
    ] {
        let edited = TEMPLATE.replacen(from, to, 1);
        assert_ne!(edited, TEMPLATE, "{from} is in the template");
        let error = Stack::parse(&edited)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains(says), "{to}: {error}");
    }
}

#[test]
fn a_queue_a_subscription_and_a_function_added_to_the_template_run_locally() {
    let addition = r#"
  ProductAuditQueue:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 60
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt ProductAuditDeadLetters.Arn
        maxReceiveCount: 3

  ProductAuditDeadLetters:
    Type: AWS::SQS::Queue

  ProductAuditFromOrder:
    Type: AWS::SNS::Subscription
    Properties:
      TopicArn: !Ref OrderTopic
      Protocol: sqs
      Endpoint: !GetAtt ProductAuditQueue.Arn
      RawMessageDelivery: true
      FilterPolicy: '{"type": ["OrderConfirmed"]}'

  ProductAuditFunction:
    Type: AWS::Serverless::Function
    Metadata:
      BuildProperties:
        Binary: product
    Properties:
      Environment:
        Variables:
          HANDLER: product-events
          TABLE_NAME: !Ref ProductTable
          DLQ_URL: !Ref ProductAuditDeadLetters
      Events:
        Queue:
          Type: SQS
          Properties:
            Queue: !GetAtt ProductAuditQueue.Arn
            BatchSize: 4
            MaximumBatchingWindowInSeconds: 2
            ScalingConfig:
              MaximumConcurrency: 3
"#;
    let edited = TEMPLATE.replacen("\nOutputs:", &format!("{addition}\nOutputs:"), 1);
    let world = world_on(Stack::parse(&edited).unwrap()).unwrap();
    let audit = world
        .consumers
        .iter()
        .find(|c| c.function == "product-audit")
        .expect("the new function consumes its queue");
    assert_eq!(audit.queue, "product-audit");
    assert_eq!(audit.source.batch_size, 4);
    assert_eq!(audit.source.batching_window, Duration::from_secs(2));
    // Its event source mapping: three batches at once, each waiting up to 2 s to fill, and
    // its messages stay invisible for the window as well as the local redelivery time.
    let spec = world.bus.spec("product-audit").unwrap();
    assert_eq!(
        (spec.batch_size, spec.batching_window, spec.pollers),
        (4, Duration::from_secs(2), 3)
    );
    assert_eq!(spec.visibility_timeout, Duration::from_secs(3));
    // The bus delivers to it what its subscription lets through, and nothing else.
    let attributes = |t: &str| BTreeMap::from([("type".to_owned(), t.to_owned())]);
    world
        .bus
        .publish("order", "{}", &attributes("OrderConfirmed"))
        .unwrap();
    world
        .bus
        .publish("order", "{}", &attributes("OrderCreated"))
        .unwrap();
    let received = world.bus.receive("product-audit", 10).unwrap();
    assert_eq!(received.len(), 1);
    // Without the addition there is no such queue.
    assert!(Stack::load().unwrap().queue("product-audit").is_none());
}

#[test]
fn the_order_functions_environment_in_the_template_sets_the_local_order_service() {
    let ttl = |world: World| world.services.orders.settings().order_ttl.num_seconds();
    let template_default = "  OrderTtlSeconds:\n    Type: Number\n    Default: 600\n";
    assert!(TEMPLATE.contains(template_default));
    assert_eq!(ttl(world_on(Stack::load().unwrap()).unwrap()), 600);
    let edited = TEMPLATE.replacen(
        template_default,
        "  OrderTtlSeconds:\n    Type: Number\n    Default: 30\n",
        1,
    );
    assert_eq!(ttl(world_on(Stack::parse(&edited).unwrap()).unwrap()), 30);
    // The local environment overrides the template, as on Lambda a deploy-time parameter does.
    let stack = Stack::parse(&edited).unwrap();
    assert_eq!(
        ttl(world_with(stack, &[("ORDER_TTL_SECONDS", "45")]).unwrap()),
        45
    );

    // Locally one service serves every order function, so they must agree.
    let sweep_only = TEMPLATE.replacen(
        "          HANDLER: order-sweep\n          TABLE_NAME: !Ref OrderTable\n          ITEM_PACKING: !Ref ItemPacking\n          ORDER_TTL_SECONDS: !Ref OrderTtlSeconds\n",
        "          HANDLER: order-sweep\n          TABLE_NAME: !Ref OrderTable\n          ITEM_PACKING: !Ref ItemPacking\n          ORDER_TTL_SECONDS: 99\n",
        1,
    );
    assert_ne!(sweep_only, TEMPLATE);
    let error = world_on(Stack::parse(&sweep_only).unwrap())
        .err()
        .expect("refused");
    assert!(
        error
            .to_string()
            .contains("ORDER_TTL_SECONDS differs between the order functions"),
        "{error}"
    );
}

#[tokio::test]
async fn every_services_settings_come_from_its_functions_environment_in_the_template() {
    // Two sign-ups an hour per address, set where a deploy would set it.
    let edited = TEMPLATE.replacen(
        "          HANDLER: user-api\n",
        "          HANDLER: user-api\n          SIGNUPS_PER_CLIENT_PER_HOUR: 2\n",
        1,
    );
    assert_ne!(edited, TEMPLATE);
    let sign_ups = |world: World| async move {
        let mut answers = Vec::new();
        for n in 0..3 {
            let email = format!("limited{n}@shop.kr");
            let answer = world
                .services
                .users
                .sign_up("10.0.0.1", &email, "secret123", "Limited")
                .await;
            answers.push(!matches!(answer, Err(SignUpError::Throttled(_))));
        }
        answers
    };
    let world = world_on(Stack::parse(&edited).unwrap()).unwrap();
    assert_eq!(sign_ups(world).await, [true, true, false]);
    // A variable set locally overrides the template.
    let stack = Stack::parse(&edited).unwrap();
    let world = world_with(stack, &[("SIGNUPS_PER_CLIENT_PER_HOUR", "0")]).unwrap();
    assert_eq!(sign_ups(world).await, [true, true, true], "0 turns it off");
    // And a bad value in the template is refused by name, as on Lambda at cold start.
    let bad = TEMPLATE.replacen(
        "          HANDLER: user-api\n",
        "          HANDLER: user-api\n          SIGNUPS_PER_CLIENT_PER_HOUR: lots\n",
        1,
    );
    let error = world_on(Stack::parse(&bad).unwrap())
        .err()
        .expect("refused");
    assert!(
        error.to_string().contains("SIGNUPS_PER_CLIENT_PER_HOUR"),
        "{error}"
    );
}

#[test]
fn every_consumed_queue_has_a_dead_letter_queue_an_alarm_and_reports_failures() {
    let stack = Stack::load().unwrap();
    let resources = resources();
    let mut consumed = 0;
    for (function, source) in stack.consumed_queues() {
        consumed += 1;
        let queue = stack.queue(&source.queue).unwrap();
        let redrive = queue
            .redrive
            .as_ref()
            .unwrap_or_else(|| panic!("{} has no DLQ", queue.id));
        assert!(redrive.max_receive_count >= 3, "{}", queue.id);
        assert!(
            queue.visibility_timeout > Duration::from_secs(10 * 3),
            "{}: the visibility timeout must be well above the function timeout",
            queue.id
        );
        assert!(source.reports_item_failures, "{}", function.id);
        let dead_letters = stack.queue(&redrive.dead_letters).unwrap();
        let alarm = format!("{}Alarm", dead_letters.id);
        assert!(resources.iter().any(|(id, _)| *id == alarm), "no {alarm}");
        assert_eq!(
            function.environment.get("DLQ_URL"),
            Some(&local::template::EnvValue::Queue(dead_letters.name.clone())),
            "{}: its poison messages go to its own queue's DLQ",
            function.id
        );
        assert!(
            stack.subscriptions_of(&queue.name).next().is_some(),
            "{}",
            queue.id
        );
    }
    assert_eq!(consumed, 15);
    let relays = stack
        .functions
        .iter()
        .filter(|f| matches!(f.trigger, Trigger::Stream(_)))
        .count();
    assert_eq!(relays, Service::ALL.len());
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
fn each_function_names_only_its_own_domain_resources() {
    for (id, lines) in resources() {
        if value(&lines, "Type:") != Some("AWS::Serverless::Function") {
            continue;
        }
        let domain = Service::ALL
            .iter()
            .filter(|s| id.starts_with(&camel(s.name())))
            .max_by_key(|s| s.name().len())
            .unwrap_or_else(|| panic!("{id} belongs to no service"));
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
                            "{id} names {word}, which is not the {} service's",
                            domain.name()
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn messages_are_encrypted_and_no_function_holds_a_key_or_a_broad_policy() {
    let mut topics = 0;
    let mut queues = 0;
    for (id, lines) in resources() {
        match value(&lines, "Type:") {
            // CloudWatch cannot publish to a topic under the AWS managed key, and alarms carry
            // no customer data (operations.rs checks the alarm topic).
            Some("AWS::SNS::Topic") if id == "AlarmTopic" => {}
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
                assert_eq!(
                    reads_keys,
                    matches!(id.as_str(), "UserApiFunction" | "UserAuthorizerFunction"),
                    "{id}"
                );
            }
            _ => {}
        }
    }
    assert_eq!((topics, queues > 0), (Service::ALL.len(), true));
}
