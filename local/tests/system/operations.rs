//! `template.yaml` as operated on AWS: every dead-letter and relay failure queue alarms and is a
//! stack output, every function logs JSON to its own retained group and alarms on its errors
//! and throttles, every alarm notifies the one chosen topic, and the saga alarm and the
//! dashboard read the metric contract (docs/operations.md). The local system reads none of it.
//!
//! The template is read as CloudFormation would after the `AWS::LanguageExtensions` transform:
//! `Fn::ForEach` blocks are expanded, and the `Ref: !Sub "${X}"` they use to name a generated
//! resource becomes `!Ref X`.

use std::collections::{BTreeMap, BTreeSet};

use contract::Service;
use local::template::{EnvValue, Stack, TEMPLATE};
use yaml_serde::Value;
use yaml_serde::value::{Tag, TaggedValue};

/// The one expression every alarm's actions are: the topic the stack creates, or the one given.
const ALARM_ACTIONS: &str = "[!If [CreateAlarmTopic, !Ref AlarmTopic, !Ref AlarmTopicArn]]";

/// The metrics the functions write (embedded metric format), all with the dimension `Service`.
const CONTRACT: [&str; 10] = [
    "OrdersCreated",
    "OrdersConfirmed",
    "OrdersFailed",
    "OrdersCancelled",
    "SagaDuration",
    "UndoAnswers",
    "PoisonMessages",
    "RelayLag",
    "StoreThrottles",
    "StoreRetries",
];

fn yaml(text: &str) -> Value {
    yaml_serde::from_str(text).unwrap()
}

fn tagged(tag: &str, value: Value) -> Value {
    Value::Tagged(Box::new(TaggedValue {
        tag: Tag::new(tag),
        value,
    }))
}

/// The template after the language extensions, by section.
struct Template {
    root: Value,
    resources: BTreeMap<String, Value>,
    outputs: BTreeMap<String, Value>,
}

impl Template {
    fn load() -> Template {
        Template::parse(TEMPLATE)
    }

    fn parse(text: &str) -> Template {
        let root = yaml(text);
        let resources = expand(&root["Resources"]);
        let outputs = expand(&root["Outputs"]);
        Template {
            root,
            resources,
            outputs,
        }
    }

    fn of_type<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = (&'a String, &'a Value)> {
        self.resources
            .iter()
            .filter(move |(_, r)| r["Type"].as_str() == Some(kind))
    }

    fn properties(&self, id: &str) -> &Value {
        let resource = self
            .resources
            .get(id)
            .unwrap_or_else(|| panic!("no resource {id}"));
        &resource["Properties"]
    }

    fn globals(&self) -> &Value {
        &self.root["Globals"]["Function"]
    }

    fn parameter_default(&self, name: &str) -> &Value {
        &self.root["Parameters"][name]["Default"]
    }

    /// The alarms whose only dimension is `name` = `value`.
    fn alarms_on(&self, name: &str, value: &Value) -> Vec<(&String, &Value)> {
        let mut dimension = yaml_serde::Mapping::new();
        dimension.insert("Name".into(), name.into());
        dimension.insert("Value".into(), value.clone());
        let dimensions = Value::Sequence(vec![Value::Mapping(dimension)]);
        self.of_type("AWS::CloudWatch::Alarm")
            .filter(|(_, a)| a["Properties"]["Dimensions"] == dimensions)
            .collect()
    }

    fn output(&self, name: &str) -> &Value {
        &self
            .outputs
            .get(name)
            .unwrap_or_else(|| panic!("no output {name}"))["Value"]
    }
}

/// A section with its `Fn::ForEach::<Loop>: [Identifier, [values…], {key: value, …}]` blocks
/// replaced by what they generate.
fn expand(section: &Value) -> BTreeMap<String, Value> {
    let mut expanded = BTreeMap::new();
    let mut put = |key: String, value: Value| {
        assert!(
            expanded.insert(key.clone(), value).is_none(),
            "{key} is declared twice"
        );
    };
    for (key, value) in section.as_mapping().expect("a section") {
        let key = key.as_str().expect("a logical id");
        if !key.starts_with("Fn::ForEach::") {
            put(key.to_owned(), value.clone());
            continue;
        }
        let [identifier, collection, fragment] = value.as_sequence().unwrap().as_slice() else {
            panic!("{key}: expected [identifier, collection, fragment]");
        };
        let placeholder = format!("${{{}}}", identifier.as_str().unwrap());
        for item in collection.as_sequence().unwrap() {
            let item = item.as_str().unwrap();
            for (k, v) in fragment.as_mapping().unwrap() {
                let k = k.as_str().unwrap().replace(&placeholder, item);
                put(k, resolve(substitute(v, &placeholder, item)));
            }
        }
    }
    expanded
}

fn substitute(value: &Value, placeholder: &str, item: &str) -> Value {
    match value {
        Value::String(s) => Value::String(s.replace(placeholder, item)),
        Value::Sequence(s) => {
            Value::Sequence(s.iter().map(|v| substitute(v, placeholder, item)).collect())
        }
        Value::Mapping(m) => Value::Mapping(
            m.iter()
                .map(|(k, v)| (k.clone(), substitute(v, placeholder, item)))
                .collect(),
        ),
        Value::Tagged(t) => tagged(&t.tag.to_string(), substitute(&t.value, placeholder, item)),
        other => other.clone(),
    }
}

/// `!Sub "text"` with nothing left to substitute, as text.
fn literal_sub(value: &Value) -> Option<String> {
    match value {
        Value::Tagged(t) if t.tag == Tag::new("Sub") => t
            .value
            .as_str()
            .filter(|s| !s.contains("${"))
            .map(str::to_owned),
        _ => None,
    }
}

/// What the transform leaves of the intrinsics a loop uses to name what it generates.
fn resolve(value: Value) -> Value {
    if let Some(text) = literal_sub(&value) {
        return Value::String(text);
    }
    match value {
        Value::Mapping(m) => {
            if m.len() == 1
                && let Some(id) = m.get("Ref").and_then(literal_sub)
            {
                return tagged("Ref", Value::String(id));
            }
            Value::Mapping(m.into_iter().map(|(k, v)| (k, resolve(v))).collect())
        }
        Value::Sequence(s) => Value::Sequence(s.into_iter().map(resolve).collect()),
        Value::Tagged(t) if t.tag == Tag::new("GetAtt") => match t.value.as_sequence() {
            Some(parts) if parts.len() == 2 => {
                let id = literal_sub(&parts[0]).or_else(|| parts[0].as_str().map(str::to_owned));
                match (id, parts[1].as_str()) {
                    (Some(id), Some(attribute)) => {
                        tagged("GetAtt", Value::String(format!("{id}.{attribute}")))
                    }
                    _ => Value::Tagged(t),
                }
            }
            _ => Value::Tagged(t),
        },
        Value::Tagged(t) => tagged(&t.tag.to_string(), resolve(t.value)),
        other => other,
    }
}

fn reference(id: &str) -> Value {
    tagged("Ref", Value::String(id.to_owned()))
}

fn attribute(id: &str, attribute: &str) -> Value {
    tagged("GetAtt", Value::String(format!("{id}.{attribute}")))
}

/// The queues that receive what failed: every redrive target and every stream's failure
/// destination, by logical id.
fn failure_queues(stack: &Stack) -> BTreeSet<String> {
    let names: BTreeSet<&str> = stack
        .queues
        .iter()
        .filter_map(|q| q.redrive.as_ref().map(|r| r.dead_letters.as_str()))
        .chain(stack.functions.iter().filter_map(|f| match &f.trigger {
            local::template::Trigger::Stream(s) => s.on_failure.as_deref(),
            _ => None,
        }))
        .collect();
    stack
        .queues
        .iter()
        .filter(|q| names.contains(q.name.as_str()))
        .map(|q| q.id.clone())
        .collect()
}

/// What is wrong with the failure queues' alarms and outputs: nothing, for the template.
fn failure_queue_problems(t: &Template, stack: &Stack) -> Vec<String> {
    let actions = yaml(ALARM_ACTIONS);
    let mut problems = Vec::new();
    let failures = failure_queues(stack);
    let named: BTreeSet<String> = t
        .of_type("AWS::SQS::Queue")
        .map(|(id, _)| id.clone())
        .filter(|id| id.ends_with("DeadLetters") || id.ends_with("RelayFailures"))
        .collect();
    // shop-admin finds them by these suffixes.
    if failures != named {
        problems.push(format!("failure queues {failures:?}, named so {named:?}"));
    }
    let outputs = |id: &str| {
        [
            (format!("{id}Url"), reference(id)),
            (format!("{id}Arn"), attribute(id, "Arn")),
        ]
    };
    for id in &named {
        let alarms = t.alarms_on("QueueName", &attribute(id, "QueueName"));
        let [(alarm, resource)] = alarms.as_slice() else {
            problems.push(format!(
                "{id} has {} alarms on its depth, not one",
                alarms.len()
            ));
            continue;
        };
        let p = &resource["Properties"];
        let expected = [
            ("Namespace", yaml("AWS/SQS")),
            ("MetricName", yaml("ApproximateNumberOfMessagesVisible")),
            ("ComparisonOperator", yaml("GreaterThanThreshold")),
            ("Threshold", yaml("0")),
            ("AlarmActions", actions.clone()),
            ("OKActions", actions.clone()),
        ];
        for (key, value) in expected {
            if p[key] != value {
                problems.push(format!("{alarm}: {key} is {:?}", p[key]));
            }
        }
        let mut expected_outputs = outputs(id).to_vec();
        // A dead-letter queue's source is its name with `Queue` for `DeadLetters`.
        if let Some(stem) = id.strip_suffix("DeadLetters") {
            let source = format!("{stem}Queue");
            let target = t
                .resources
                .get(&source)
                .map(|r| &r["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]);
            if target != Some(&attribute(id, "Arn")) {
                problems.push(format!("{id}: {source} does not redrive to it"));
            }
            expected_outputs.extend(outputs(&source));
        }
        for (name, value) in expected_outputs {
            if t.outputs.get(&name).map(|o| &o["Value"]) != Some(&value) {
                problems.push(format!("no output {name} of {value:?}"));
            }
        }
    }
    problems
}

#[test]
fn every_dead_letter_and_relay_failure_queue_alarms_and_is_an_output() {
    let t = Template::load();
    let stack = Stack::load().unwrap();
    assert_eq!(failure_queues(&stack).len(), 15 + Service::ALL.len());
    assert_eq!(failure_queue_problems(&t, &stack), Vec::<String>::new());
}

#[test]
fn a_failure_queue_without_its_alarm_action_or_its_outputs_is_caught() {
    for (from, says) in [
        (
            "      AlarmActions: [!If [CreateAlarmTopic, !Ref AlarmTopic, !Ref AlarmTopicArn]]\n",
            "UserRelayFailuresAlarm: AlarmActions",
        ),
        (
            "      - OrderRelayFailures\n",
            "no output OrderRelayFailuresUrl",
        ),
        (
            "      - OrderTimelineQueue\n",
            "no output OrderTimelineQueueArn",
        ),
    ] {
        let edited = TEMPLATE.replacen(from, "", 1);
        assert_ne!(edited, TEMPLATE, "{from}");
        let problems =
            failure_queue_problems(&Template::parse(&edited), &Stack::parse(&edited).unwrap());
        assert!(
            problems.iter().any(|p| p.contains(says)),
            "{from}: {problems:?}"
        );
    }
}

#[test]
fn every_alarm_notifies_the_one_chosen_topic() {
    let t = Template::load();
    let actions = yaml(ALARM_ACTIONS);
    let alarms: Vec<_> = t.of_type("AWS::CloudWatch::Alarm").collect();
    assert!(alarms.len() > 2 * 31, "{}", alarms.len());
    for (id, alarm) in alarms {
        assert_eq!(alarm["Properties"]["AlarmActions"], actions, "{id}");
        assert_eq!(alarm["Properties"]["OKActions"], actions, "{id}");
    }
    // The topic given, else one the stack creates, with the e-mail given subscribed to it.
    assert_eq!(t.parameter_default("AlarmTopicArn"), &yaml("''"));
    assert_eq!(t.parameter_default("AlarmEmail"), &yaml("''"));
    assert_eq!(
        t.root["Conditions"]["CreateAlarmTopic"],
        yaml("!Equals [!Ref AlarmTopicArn, '']")
    );
    assert_eq!(
        t.root["Conditions"]["SubscribeAlarmEmail"],
        yaml("!And [!Condition CreateAlarmTopic, !Not [!Equals [!Ref AlarmEmail, '']]]")
    );
    let topic = &t.resources["AlarmTopic"];
    assert_eq!(topic["Type"], yaml("AWS::SNS::Topic"));
    assert_eq!(topic["Condition"], yaml("CreateAlarmTopic"));
    // CloudWatch cannot publish to a topic under the AWS managed key.
    assert!(topic["Properties"].get("KmsMasterKeyId").is_none());
    let subscriptions: Vec<_> = t
        .of_type("AWS::SNS::Subscription")
        .filter(|(_, s)| s["Properties"]["TopicArn"] == reference("AlarmTopic"))
        .collect();
    let [(_, email)] = subscriptions.as_slice() else {
        panic!("{} subscriptions to the alarm topic", subscriptions.len());
    };
    assert_eq!(email["Condition"], yaml("SubscribeAlarmEmail"));
    assert_eq!(email["Properties"]["Protocol"], yaml("email"));
    assert_eq!(email["Properties"]["Endpoint"], reference("AlarmEmail"));
}

#[test]
fn every_function_logs_json_to_its_own_retained_group() {
    let t = Template::load();
    assert_eq!(
        t.globals()["LoggingConfig"],
        yaml("{LogFormat: JSON, ApplicationLogLevel: INFO, SystemLogLevel: WARN}")
    );
    let retention = &t.root["Parameters"]["LogRetentionDays"];
    let allowed = retention["AllowedValues"].as_sequence().unwrap();
    assert!(allowed.contains(&retention["Default"]));
    let functions: Vec<String> = t
        .of_type("AWS::Serverless::Function")
        .map(|(id, _)| id.clone())
        .collect();
    assert_eq!(functions.len(), 31);
    for id in &functions {
        let group = format!("{id}Logs");
        assert_eq!(
            t.properties(id)["LoggingConfig"],
            yaml(&format!("{{LogGroup: !Ref {group}}}")),
            "{id}"
        );
        assert_eq!(t.resources[&group]["Type"], yaml("AWS::Logs::LogGroup"));
        let p = t.properties(&group);
        assert_eq!(
            p["RetentionInDays"],
            reference("LogRetentionDays"),
            "{group}"
        );
        // Named, so a group Lambda made for the function before cannot collide with it.
        assert_eq!(
            p["LogGroupName"],
            yaml(&format!("!Sub /aws/lambda/${{AWS::StackName}}/{id}")),
            "{group}"
        );
    }
}

#[test]
fn every_function_alarms_on_errors_and_throttles_and_a_shift_rolls_back_on_errors() {
    let t = Template::load();
    let globals = t.globals();
    assert_eq!(globals["AutoPublishAlias"], yaml("live"));
    assert_eq!(
        globals["DeploymentPreference"],
        yaml("{Enabled: !Ref TrafficShifting, Type: !Ref DeploymentType}")
    );
    assert_eq!(t.parameter_default("TrafficShifting"), &yaml("'false'"));
    for (id, _) in t.of_type("AWS::Serverless::Function") {
        let alarms = t.alarms_on("FunctionName", &reference(id));
        let metrics: BTreeMap<&str, &String> = alarms
            .iter()
            .filter(|(_, a)| a["Properties"]["Namespace"] == yaml("AWS/Lambda"))
            .filter_map(|(alarm, a)| Some((a["Properties"]["MetricName"].as_str()?, *alarm)))
            .collect();
        assert_eq!(
            metrics.keys().copied().collect::<Vec<_>>(),
            ["Errors", "Throttles"],
            "{id}"
        );
        assert_eq!(
            t.properties(id)["DeploymentPreference"],
            yaml(&format!("{{Alarms: [!Ref {}]}}", metrics["Errors"])),
            "{id}"
        );
    }
    // The authorizer API Gateway calls is the alias too, like every route and event source.
    let authorizer = &t.properties("HttpApi")["Auth"]["Authorizers"]["UserAuthorizer"];
    assert_eq!(
        authorizer["FunctionArn"],
        reference("UserAuthorizerFunction.Alias")
    );
    assert_eq!(
        t.properties("UserAuthorizerPermission")["FunctionName"],
        reference("UserAuthorizerFunction.Alias")
    );
}

/// The dashboard's metrics: `[namespace, name, dimension, value, …]` as text, and the
/// expressions.
fn dashboard(t: &Template) -> (Vec<Vec<String>>, Vec<String>, serde_json::Value) {
    let body = &t.properties("OperationsDashboard")["DashboardBody"];
    let Value::Tagged(sub) = body else {
        panic!("DashboardBody is a !Sub of JSON");
    };
    let json: serde_json::Value = serde_json::from_str(sub.value.as_str().unwrap())
        .unwrap_or_else(|e| panic!("DashboardBody is not JSON: {e}"));
    let (mut metrics, mut expressions) = (Vec::new(), Vec::new());
    for widget in json["widgets"].as_array().unwrap() {
        for metric in widget["properties"]["metrics"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let parts = metric.as_array().unwrap();
            if let Some(expression) = parts[0]["expression"].as_str() {
                expressions.push(expression.to_owned());
                continue;
            }
            metrics.push(
                parts
                    .iter()
                    .filter_map(|p| p.as_str().map(str::to_owned))
                    .collect(),
            );
        }
    }
    (metrics, expressions, json)
}

#[test]
fn the_saga_alarm_and_the_dashboard_read_the_metric_contract() {
    let t = Template::load();
    assert_eq!(
        t.globals()["Environment"]["Variables"]["METRICS_NAMESPACE"],
        reference("MetricsNamespace")
    );
    assert_eq!(t.parameter_default("MetricsNamespace"), &yaml("Shop"));
    let saga = t.properties("SagaFailureRateAlarm");
    let by_id: BTreeMap<&str, &Value> = saga["Metrics"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|m| (m["Id"].as_str().unwrap(), m))
        .collect();
    for (id, metric) in [("confirmed", "OrdersConfirmed"), ("failed", "OrdersFailed")] {
        let stat = &by_id[id]["MetricStat"];
        assert_eq!(
            stat["Metric"],
            yaml(&format!(
                "{{Namespace: !Ref MetricsNamespace, MetricName: {metric}, Dimensions: [{{Name: Service, Value: order}}]}}"
            ))
        );
        assert_eq!(
            (&stat["Period"], &stat["Stat"]),
            (&yaml("300"), &yaml("Sum"))
        );
        assert_eq!(by_id[id]["ReturnData"], yaml("false"));
    }
    let Value::Tagged(expression) = &by_id["rate"]["Expression"] else {
        panic!("the rate is a !Sub");
    };
    let expression = expression.value.as_str().unwrap();
    assert!(
        expression.starts_with(
            "IF(FILL(confirmed, 0) + FILL(failed, 0) >= ${SagaFailureRateMinOrders}, "
        ) && expression.contains("100 * FILL(failed, 0) / (FILL(confirmed, 0) + FILL(failed, 0))"),
        "{expression}"
    );
    assert_eq!(saga["Threshold"], reference("SagaFailureRateAlarmPercent"));
    assert_eq!(saga["TreatMissingData"], yaml("notBreaching"));

    let (metrics, expressions, json) = dashboard(&t);
    let shown = |name: &str| {
        metrics.iter().any(|m| {
            m[0] == "${MetricsNamespace}" && m[1] == name && m[2..4] == ["Service", "order"]
        }) || expressions.iter().any(|e| {
            e.contains("{\"${MetricsNamespace}\",Service")
                && e.contains(&format!("MetricName=\"{name}\""))
        })
    };
    for name in CONTRACT {
        assert!(shown(name), "the dashboard shows no {name}");
    }
    assert!(
        expressions
            .iter()
            .any(|e| e.contains("{\"${MetricsNamespace}\",Service,Reason}"))
    );
    let stats: BTreeSet<&str> = json["widgets"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|w| w["properties"]["metrics"].as_array().into_iter().flatten())
        .filter(|m| m[1] == "SagaDuration")
        .filter_map(|m| m.as_array()?.last()?["stat"].as_str())
        .collect();
    assert!(stats.contains("p50") && stats.contains("p99"), "{stats:?}");
    // Every failure queue's depth and every function's errors and throttles.
    for id in failure_queues(&Stack::load().unwrap()) {
        let name = format!("${{{id}.QueueName}}");
        assert!(
            metrics
                .iter()
                .any(|m| m[1] == "ApproximateNumberOfMessagesVisible" && m[3] == name),
            "the dashboard shows no {id}"
        );
    }
    for (id, _) in t.of_type("AWS::Serverless::Function") {
        for metric in ["Errors", "Throttles"] {
            let found = metrics
                .iter()
                .any(|m| m[..2] == ["AWS/Lambda", metric] && m[3] == format!("${{{id}}}"));
            assert!(found, "the dashboard shows no {metric} of {id}");
        }
    }
    assert_eq!(t.output("DashboardName"), &reference("OperationsDashboard"));
}

#[test]
fn the_local_system_runs_none_of_it_and_every_function_gets_the_namespace() {
    let stack = Stack::load().unwrap();
    let topics: BTreeSet<&str> = stack.topics.iter().map(|t| t.name.as_str()).collect();
    let services: BTreeSet<&str> = Service::ALL.iter().map(|s| s.name()).collect();
    assert_eq!(topics, services);
    assert!(stack.subscriptions.iter().all(|s| s.topic != "alarm"));
    for function in &stack.functions {
        assert_eq!(
            function.environment.get("METRICS_NAMESPACE"),
            Some(&EnvValue::Text("Shop".to_owned())),
            "{}",
            function.id
        );
    }
    // Every table is an output (shop-admin and the README read them).
    let t = Template::load();
    for table in &stack.tables {
        assert_eq!(
            t.output(&format!("{}Name", table.id)),
            &reference(&table.id)
        );
    }
}
