use serde::{Deserialize, Serialize};

/// An amount of money in whole Korean won. Integer only: there is no floating point in money.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(transparent)]
#[schema(value_type = u64, example = 12000)]
pub struct Won(pub u64);

impl Won {
    pub const ZERO: Won = Won(0);

    pub fn checked_add(self, other: Won) -> Option<Won> {
        self.0.checked_add(other.0).map(Won)
    }

    pub fn checked_sub(self, other: Won) -> Option<Won> {
        self.0.checked_sub(other.0).map(Won)
    }

    pub fn checked_mul(self, times: u64) -> Option<Won> {
        self.0.checked_mul(times).map(Won)
    }
}

impl std::fmt::Display for Won {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} KRW", self.0)
    }
}
