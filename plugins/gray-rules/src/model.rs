//! The typed gray rule that [`validate`](crate::validate) builds from the user's JSON: every
//! field already checked, values parsed, regexes compiled and JSON paths precomputed, so
//! evaluating and rendering never fail and never re-parse.

use regex::Regex;

/// A valid seed 001 `grayRule`.
#[derive(Debug, Clone)]
pub enum GrayRule {
    Percent(Percent),
    Content(Content),
}

/// `grayType` PERCENT: a share of all requests reaches the canary.
#[derive(Debug, Clone)]
pub struct Percent {
    /// 0–100.
    pub rate: u8,
    pub tag: String,
}

/// `grayType` CONTENT: requests matching any rule reach the canary.
#[derive(Debug, Clone)]
pub struct Content {
    /// For people (`ruleName`); it takes no part in routing.
    pub rule_name: Option<String>,
    pub tag: String,
    /// Propagate the tag downstream (renders as the `x-gray-tag` request header).
    pub carry_data: bool,
    /// Tried in order; the first that matches decides.
    pub rules: Vec<ContentRule>,
}

/// One entry of `content.rules`.
#[derive(Debug, Clone)]
pub struct ContentRule {
    /// `content.rules[i]`.
    pub path: String,
    pub service: Service,
    pub combine: Combine,
    pub conditions: Vec<Condition>,
}

/// `serviceType` and what the rule's `path` limits it to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Service {
    /// HTTP requests whose path is under `path` (path-element prefix).
    SpringCloud { path: String },
    /// Dubbo calls, optionally only to one service interface (and method).
    Dubbo { only: Option<DubboTarget> },
}

/// A Dubbo rule's `path`: `com.shop.CartService` or `com.shop.CartService:add`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DubboTarget {
    pub service: String,
    pub method: Option<String>,
}

/// `condition`: how a rule combines its conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Combine {
    And,
    Or,
}

/// One entry of `conditions`.
#[derive(Debug, Clone)]
pub struct Condition {
    /// `content.rules[i].conditions[j]`.
    pub path: String,
    pub source: Source,
    pub test: Test,
    /// `value` as the user wrote it, for reasons.
    pub value: String,
}

/// Where a condition reads its value from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Cookie(String),
    Header(String),
    /// A query parameter.
    Param(String),
    /// A dotted path into a JSON body, or a key of a form-encoded one.
    Body(String),
    /// A Dubbo argument and a dotted path inside it (empty: the whole argument).
    Argument {
        index: usize,
        expr: String,
    },
}

/// The six comparisons of `operator` (and of `cond` `>` `<` `>=` `<=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
}

/// A condition's `cond` with its `value` parsed.
#[derive(Debug, Clone)]
pub enum Test {
    /// `=`: exact, case-sensitive.
    Equals(String),
    /// `!=`.
    NotEquals(String),
    /// `>` `<` `>=` `<=` on numbers.
    Compare(Comparison, f64),
    /// `%`: `fnv1a32(value) % 100 < percent`.
    Bucket(u8),
    /// `in`: one of the trimmed comma-separated items.
    In(Vec<String>),
    /// `mod`: `value.rem_euclid(100) <operator> remainder`.
    Mod(Comparison, i64),
    /// `regex`: the whole value matches `expr`.
    Regex { expr: String, anchored: Regex },
}

impl Comparison {
    /// The operator as written in a rule.
    pub fn symbol(self) -> &'static str {
        match self {
            Comparison::Eq => "=",
            Comparison::Ne => "!=",
            Comparison::Gt => ">",
            Comparison::Lt => "<",
            Comparison::Ge => ">=",
            Comparison::Le => "<=",
        }
    }

    /// Parses one of the six operators.
    pub fn parse(text: &str) -> Option<Comparison> {
        Some(match text {
            "=" => Comparison::Eq,
            "!=" => Comparison::Ne,
            ">" => Comparison::Gt,
            "<" => Comparison::Lt,
            ">=" => Comparison::Ge,
            "<=" => Comparison::Le,
            _ => return None,
        })
    }

    /// `left <op> right`.
    pub fn holds<T: PartialOrd>(self, left: T, right: T) -> bool {
        match self {
            Comparison::Eq => left == right,
            Comparison::Ne => left != right,
            Comparison::Gt => left > right,
            Comparison::Lt => left < right,
            Comparison::Ge => left >= right,
            Comparison::Le => left <= right,
        }
    }
}

impl Test {
    /// The `cond` as written in a rule.
    pub fn cond(&self) -> &'static str {
        match self {
            Test::Equals(_) => "=",
            Test::NotEquals(_) => "!=",
            Test::Compare(comparison, _) => comparison.symbol(),
            Test::Bucket(_) => "%",
            Test::In(_) => "in",
            Test::Mod(..) => "mod",
            Test::Regex { .. } => "regex",
        }
    }
}

impl Source {
    /// The condition's `type` as written (`argument` for Dubbo).
    pub fn kind(&self) -> &'static str {
        match self {
            Source::Cookie(_) => "cookie",
            Source::Header(_) => "header",
            Source::Param(_) => "param",
            Source::Body(_) => "body",
            Source::Argument { .. } => "argument",
        }
    }
}
