//! Errors in grammar sources.

/// A grammar that cannot be used. Positions are 1-based line and column
/// (in characters) of the source text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrammarError {
    /// The source does not follow GBNF syntax.
    #[error("grammar syntax error at line {line}, column {column}: {message}")]
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
    /// A rule refers to a rule that is never defined.
    #[error("undefined rule `{name}` at line {line}, column {column}")]
    UndefinedRule {
        name: String,
        line: usize,
        column: usize,
    },
    /// The start rule is missing.
    #[error("the grammar has no `{0}` rule")]
    MissingRoot(String),
    /// A rule can reach itself without consuming a character, which would
    /// make matching loop forever.
    #[error("rule `{0}` is left-recursive")]
    LeftRecursion(String),
    /// Expanding `{m,n}` repetitions would make the grammar unreasonably large.
    #[error("grammar too large at line {line}, column {column}: {message}")]
    TooLarge {
        line: usize,
        column: usize,
        message: String,
    },
}
