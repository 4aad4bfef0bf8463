//! The event filtering patterns of an event source's `FilterCriteria`, as Lambda applies them
//! to a record before invoking: nested objects of fields, each leaf a list of allowed values
//! or `{"prefix": …}`. Other operators are refused when the template is read, so a filter the
//! local system cannot apply is never ignored.

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
                        Value::Object(op) => {
                            return Err(format!(
                                "{at}: {} is not applied locally (only values and prefix are)",
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
            return false;
        };
        match rule {
            Value::Object(_) => matches(rule, value),
            Value::Array(allowed) => allowed.iter().any(|a| match a {
                Value::Object(op) => match (op.get("prefix"), value) {
                    (Some(Value::String(prefix)), Value::String(s)) => {
                        s.starts_with(prefix.as_str())
                    }
                    _ => false,
                },
                _ => a == value,
            }),
            _ => false,
        }
    })
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
