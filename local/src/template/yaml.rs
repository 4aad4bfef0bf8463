//! Reading values out of a CloudFormation template: plain scalars, parameter defaults and the
//! short-form intrinsics the local system understands (`!Ref`, `!GetAtt`). Any other tag, or
//! a long-form intrinsic, where the local system needs the value is an error naming where it
//! is — never a guess.

use std::collections::BTreeMap;

use yaml_serde::Value;

use super::TemplateError;

/// What a `!Ref` or `!GetAtt` points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// `!Ref Id`: a resource or a parameter.
    Ref(String),
    /// `!GetAtt Id.Attribute` (or `!GetAtt [Id, Attribute]`).
    GetAtt(String, String),
}

/// A template's values, read with its parameters' defaults.
pub struct Reader<'a> {
    pub parameters: &'a BTreeMap<String, String>,
}

pub fn field<'v>(value: &'v Value, key: &str) -> Option<&'v Value> {
    value.as_mapping().and_then(|m| m.get(key))
}

/// The tag of a tagged value without its `!`, and the value it tags.
fn tagged(value: &Value) -> Option<(String, &Value)> {
    let Value::Tagged(tagged) = value else {
        return None;
    };
    let tag = tagged.tag.to_string();
    Some((tag.trim_start_matches('!').to_owned(), &tagged.value))
}

impl Reader<'_> {
    /// A scalar as text: a string, number or boolean, or `!Ref` to a parameter (its default).
    pub fn text(&self, value: &Value, at: &str) -> Result<String, TemplateError> {
        match value {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            _ => match self.reference(value, at)? {
                Reference::Ref(id) => self.parameters.get(&id).cloned().ok_or_else(|| {
                    TemplateError::new(at, format!("!Ref {id} is not a parameter with a default"))
                }),
                Reference::GetAtt(id, attribute) => Err(TemplateError::new(
                    at,
                    format!(
                        "!GetAtt {id}.{attribute} has no value locally; a literal or a parameter is needed here"
                    ),
                )),
            },
        }
    }

    /// A whole number, as a literal or a parameter's default.
    pub fn number(&self, value: &Value, at: &str) -> Result<u64, TemplateError> {
        let text = self.text(value, at)?;
        text.parse()
            .map_err(|_| TemplateError::new(at, format!("{text:?} is not a whole number")))
    }

    /// The optional whole number at `key` of `value`.
    pub fn number_at(
        &self,
        value: &Value,
        key: &str,
        at: &str,
    ) -> Result<Option<u64>, TemplateError> {
        field(value, key)
            .map(|v| self.number(v, &format!("{at}.{key}")))
            .transpose()
    }

    /// A `!Ref` or `!GetAtt`.
    pub fn reference(&self, value: &Value, at: &str) -> Result<Reference, TemplateError> {
        if let Some((tag, inner)) = tagged(value) {
            return match (tag.as_str(), inner) {
                ("Ref", Value::String(id)) => Ok(Reference::Ref(id.clone())),
                ("GetAtt", Value::String(path)) => match path.split_once('.') {
                    Some((id, attribute)) => {
                        Ok(Reference::GetAtt(id.to_owned(), attribute.to_owned()))
                    }
                    None => Err(TemplateError::new(
                        at,
                        format!("!GetAtt {path} names no attribute"),
                    )),
                },
                ("GetAtt", Value::Sequence(parts)) => match parts.as_slice() {
                    [Value::String(id), Value::String(attribute)] => {
                        Ok(Reference::GetAtt(id.clone(), attribute.clone()))
                    }
                    _ => Err(TemplateError::new(
                        at,
                        "!GetAtt needs [resource, attribute]",
                    )),
                },
                (tag, _) => Err(TemplateError::new(
                    at,
                    format!("!{tag} is not understood locally here (only !Ref and !GetAtt are)"),
                )),
            };
        }
        if let Some(mapping) = value.as_mapping()
            && let Some(Value::String(key)) = mapping.keys().next()
            && (key == "Ref" || key.starts_with("Fn::"))
        {
            return Err(TemplateError::new(
                at,
                format!(
                    "the long form {key} is not read locally; write the short form (!Ref, !GetAtt)"
                ),
            ));
        }
        Err(TemplateError::new(at, "expected !Ref or !GetAtt"))
    }

    /// The resource a `!GetAtt Id.<attribute>` names, checking the attribute.
    pub fn attribute_of(
        &self,
        value: &Value,
        attribute: &str,
        at: &str,
    ) -> Result<String, TemplateError> {
        match self.reference(value, at)? {
            Reference::GetAtt(id, a) if a == attribute => Ok(id),
            other => Err(TemplateError::new(
                at,
                format!("expected !GetAtt <resource>.{attribute}, found {other:?}"),
            )),
        }
    }

    /// The resource a `!Ref Id` names.
    pub fn ref_of(&self, value: &Value, at: &str) -> Result<String, TemplateError> {
        match self.reference(value, at)? {
            Reference::Ref(id) => Ok(id),
            other => Err(TemplateError::new(
                at,
                format!("expected !Ref <resource>, found {other:?}"),
            )),
        }
    }

    /// A JSON document written as a string (or as YAML), such as a filter policy.
    pub fn json(&self, value: &Value, at: &str) -> Result<serde_json::Value, TemplateError> {
        match value {
            Value::String(s) => serde_json::from_str(s)
                .map_err(|e| TemplateError::new(at, format!("not JSON: {e}"))),
            Value::Mapping(_) => serde_json::to_value(value)
                .map_err(|e| TemplateError::new(at, format!("not a JSON document: {e}"))),
            _ => Err(TemplateError::new(at, "expected a JSON document")),
        }
    }
}

/// `CouponSourceTopic` less `Topic` → `coupon-source`: the local name of a resource.
pub fn local_name(id: &str, suffix: &str) -> String {
    let stem = id
        .strip_suffix(suffix)
        .filter(|s| !s.is_empty())
        .unwrap_or(id);
    let mut name = String::with_capacity(stem.len() + 4);
    for (i, c) in stem.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                name.push('-');
            }
            name.push(c.to_ascii_lowercase());
        } else {
            name.push(c);
        }
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader() -> Reader<'static> {
        static PARAMETERS: std::sync::LazyLock<BTreeMap<String, String>> =
            std::sync::LazyLock::new(|| BTreeMap::from([("Size".to_owned(), "5".to_owned())]));
        Reader {
            parameters: &PARAMETERS,
        }
    }

    fn yaml(text: &str) -> Value {
        yaml_serde::from_str(text).unwrap()
    }

    #[test]
    fn names_are_the_logical_ids_in_kebab_case_without_their_kind() {
        assert_eq!(local_name("CouponSourceTopic", "Topic"), "coupon-source");
        assert_eq!(
            local_name("OrderStepResultsQueue", "Queue"),
            "order-step-results"
        );
        assert_eq!(
            local_name("OrderStepResultsDeadLetters", "Queue"),
            "order-step-results-dead-letters"
        );
        assert_eq!(local_name("Queue", "Queue"), "queue");
    }

    #[test]
    fn short_form_references_and_parameters_are_read() {
        let r = reader();
        assert_eq!(
            r.reference(&yaml("!GetAtt AQueue.Arn"), "x").unwrap(),
            Reference::GetAtt("AQueue".into(), "Arn".into())
        );
        assert_eq!(
            r.reference(&yaml("!GetAtt [AQueue, Arn]"), "x").unwrap(),
            Reference::GetAtt("AQueue".into(), "Arn".into())
        );
        assert_eq!(r.ref_of(&yaml("!Ref ATable"), "x").unwrap(), "ATable");
        assert_eq!(r.number(&yaml("!Ref Size"), "x").unwrap(), 5);
        assert_eq!(r.number(&yaml("10"), "x").unwrap(), 10);
    }

    #[test]
    fn anything_else_is_an_error_naming_where_and_what() {
        let r = reader();
        for (text, says) in [
            ("!Sub ${A}", "!Sub is not understood locally here"),
            ("!If [C, a, b]", "!If is not understood locally here"),
            ("{Ref: ATable}", "the long form Ref is not read locally"),
            ("{'Fn::GetAtt': [A, Arn]}", "the long form Fn::GetAtt"),
            (
                "!Ref Nothing",
                "!Ref Nothing is not a parameter with a default",
            ),
            ("!GetAtt A", "!GetAtt A names no attribute"),
            ("ten", "\"ten\" is not a whole number"),
        ] {
            let error = r
                .number(&yaml(text), "Resources.F.BatchSize")
                .unwrap_err()
                .to_string();
            assert!(error.contains("Resources.F.BatchSize"), "{error}");
            assert!(error.contains(says), "{text}: {error}");
        }
    }
}
