//! Reading configuration from the environment: every problem is a clear error at start.

/// A configuration value that cannot be used. Its message names the variable and says why.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("configuration error: {variable}: {problem}")]
pub struct ConfigError {
    pub variable: String,
    pub problem: String,
}

impl ConfigError {
    pub fn new(variable: &str, problem: impl Into<String>) -> Self {
        ConfigError {
            variable: variable.to_owned(),
            problem: problem.into(),
        }
    }
}

/// Where configuration comes from: the process environment, or a map in tests.
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
    /// Every variable set, for a snapshot (the local system layers it over the template's).
    fn vars(&self) -> Vec<(String, String)>;
}

/// The process environment. An unset or empty variable reads as absent.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.trim().is_empty())
    }

    fn vars(&self) -> Vec<(String, String)> {
        std::env::vars()
            .filter(|(_, v)| !v.trim().is_empty())
            .collect()
    }
}

impl Env for std::collections::HashMap<&str, &str> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name)
            .map(|v| (*v).to_owned())
            .filter(|v| !v.trim().is_empty())
    }

    fn vars(&self) -> Vec<(String, String)> {
        self.iter()
            .filter(|(_, v)| !v.trim().is_empty())
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }
}

impl Env for std::collections::BTreeMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).filter(|v| !v.trim().is_empty()).cloned()
    }

    fn vars(&self) -> Vec<(String, String)> {
        self.iter()
            .filter(|(_, v)| !v.trim().is_empty())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// A required variable.
pub fn required(env: &dyn Env, name: &str) -> Result<String, ConfigError> {
    env.var(name)
        .ok_or_else(|| ConfigError::new(name, "is not set"))
}

/// A whole number within `min..=max`, or `default` when unset.
pub fn number_in(
    env: &dyn Env,
    name: &str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    let Some(raw) = env.var(name) else {
        return Ok(default);
    };
    match raw.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(ConfigError::new(
            name,
            format!("must be a whole number from {min} to {max}, not {raw:?}"),
        )),
    }
}
