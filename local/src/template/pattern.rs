//! The event filtering patterns of an event source's `FilterCriteria`, as Lambda applies them
//! to a record before invoking: nested objects of fields, each leaf a list of allowed values,
//! `{"prefix": …}` or `{"exists": true|false}`. Other operators are refused when the template
//! is read, so a filter the local system cannot apply is never ignored.

use serde_json::Value;

/// One filter pattern; a record passes a list of them when it matches any.
#[derive(Debug, Clone, PartialEq)]
pub struct EventPattern(Value);

impl EventPattern {
    pub fn parse(pattern: Value) -> Result<EventPattern, String> {
        check(&pattern, "")?;
        Ok(EventPattern(pattern))
    }

    pub fn matches(&self, record: &Value) -> bool {
        matches(&self.0, record)
    }
}

fn check(pattern: &Value, at: &str) -> Result<(), String> {
    let Value::Object(fields) = pattern else {
        return Err(format!("{at}: a pattern is an object of fields"));
    };
    for (name, rule) in fields {
        let at = format!("{at}/{name}");
        match rule {
            Value::Object(_) => check(rule, &at)?,
            Value::Array(allowed) => {
                for value in allowed {
                    match value {
                        Value::Object(op)
                            if op.len() == 1 && op.get("prefix").is_some_and(Value::is_string) => {}
                        Value::Object(op)
                            if op.len() == 1 && op.get("exists").is_some_and(Value::is_boolean) => {
                        }
                        Value::Object(op) => {
                            return Err(format!(
                                "{at}: {} is not applied locally (only values, prefix and exists are)",
                                Value::Object(op.clone())
                            ));
                        }
                        Value::Array(_) => {
                            return Err(format!("{at}: nested lists are not a pattern"));
                        }
                        _ => {}
                    }
                }
            }
            _ => {
                return Err(format!(
                    "{at}: a field's rule is a list of values or an object"
                ));
            }
        }
    }
    Ok(())
}

fn matches(pattern: &Value, record: &Value) -> bool {
    let Value::Object(fields) = pattern else {
        return false;
    };
    fields.iter().all(|(name, rule)| {
        let Some(value) = record.get(name) else {
            return matches_absence(rule);
        };
        match rule {
            Value::Object(_) => matches(rule, value),
            Value::Array(allowed) => allowed.iter().any(|a| match a {
                Value::Object(op) => match (op.get("prefix"), op.get("exists"), value) {
                    (Some(Value::String(prefix)), _, Value::String(s)) => {
                        s.starts_with(prefix.as_str())
                    }
                    // A leaf that is there (an object is not a leaf).
                    (_, Some(Value::Bool(exists)), leaf) => *exists && !leaf.is_object(),
                    _ => false,
                },
                _ => a == value,
            }),
            _ => false,
        }
    })
}

/// Whether a rule holds for a field that is not there: only `{"exists": false}` does, at
/// every leaf beneath it.
fn matches_absence(rule: &Value) -> bool {
    match rule {
        Value::Object(fields) => fields.values().all(matches_absence),
        Value::Array(allowed) => allowed
            .iter()
            .any(|a| a.get("exists") == Some(&Value::Bool(false))),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn values_and_prefixes_match_nested_fields() {
        let outbox = EventPattern::parse(json!({
            "eventName": ["INSERT"],
            "dynamodb": {"NewImage": {"pk": {"S": [{"prefix": "OUTBOX#"}]}}}
        }))
        .unwrap();
        let record = |event: &str, pk: &str| json!({"eventName": event, "dynamodb": {"NewImage": {"pk": {"S": pk}}}});
        assert!(outbox.matches(&record("INSERT", "OUTBOX#1")));
        assert!(!outbox.matches(&record("MODIFY", "OUTBOX#1")));
        assert!(!outbox.matches(&record("INSERT", "ORDER#1")));
        assert!(!outbox.matches(&json!({"eventName": "INSERT"})));
    }

    #[test]
    fn exists_matches_a_leaf_that_is_there_or_is_not() {
        let carrying = EventPattern::parse(json!({
            "eventName": ["INSERT", "MODIFY"],
            "dynamodb": {"NewImage": {"events": {"S": [{"exists": true}]}}}
        }))
        .unwrap();
        let with =
            json!({"eventName": "MODIFY", "dynamodb": {"NewImage": {"events": {"S": "[]"}}}});
        let without = json!({"eventName": "MODIFY", "dynamodb": {"NewImage": {"pk": {"S": "A"}}}});
        assert!(carrying.matches(&with));
        assert!(!carrying.matches(&without));
        assert!(!carrying.matches(&json!({"eventName": "REMOVE", "dynamodb": {}})));
        // `{"events": {"S": …}}` is an object, not a leaf: `exists` does not match it.
        let not_a_leaf =
            EventPattern::parse(json!({"dynamodb": {"NewImage": {"events": [{"exists": true}]}}}))
                .unwrap();
        assert!(!not_a_leaf.matches(&with));

        let bare = EventPattern::parse(
            json!({"dynamodb": {"NewImage": {"events": {"S": [{"exists": false}]}}}}),
        )
        .unwrap();
        assert!(bare.matches(&without));
        assert!(!bare.matches(&with));
        assert!(EventPattern::parse(json!({"a": [{"exists": "yes"}]})).is_err());
    }

    #[test]
    fn operators_it_cannot_apply_are_refused() {
        for pattern in [
            json!({"a": [{"anything-but": ["x"]}]}),
            json!({"a": [{"numeric": [">", 1]}]}),
            json!({"a": "x"}),
            json!(["x"]),
        ] {
            assert!(EventPattern::parse(pattern.clone()).is_err(), "{pattern}");
        }
    }
}
