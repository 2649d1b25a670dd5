//! OWNED BY HELPER: interface only.
use super::Command;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError {
    pub problem: String,
    pub usage: &'static str,
    pub example: &'static str,
}

pub fn parse(_command: &str, _text: &str) -> Result<Command, UsageError> {
    todo!()
}
