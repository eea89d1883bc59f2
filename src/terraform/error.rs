//! What can go wrong between bytes and values.

use super::types::MAX_DEPTH;

/// A value or type that could not be decoded or encoded.
///
/// `at` names where, in Terraform's path syntax from the value's root:
/// `.tags["env"]`, `.rule[0].port`, or `(root)`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ValueError {
    /// The bytes hold something other than the type asks for, or the
    /// value given to encode is not of the type.
    #[error("{at}: expected {expected}, found {found}")]
    Mismatch {
        /// Where.
        at: String,
        /// The type asked for.
        expected: String,
        /// What was there.
        found: String,
    },
    /// An object has an attribute its type does not.
    #[error("{at}: unexpected attribute {name:?} (not in the object type)")]
    UnexpectedAttribute {
        /// The object's path.
        at: String,
        /// The attribute.
        name: String,
    },
    /// A tuple of the wrong length.
    #[error("{at}: tuple of {expected} elements, found {found}")]
    TupleLength {
        /// Where.
        at: String,
        /// The type's length.
        expected: usize,
        /// The value's.
        found: usize,
    },
    /// Malformed msgpack: truncated, a length beyond the input, text not
    /// UTF-8, an extension that is not an unknown value.
    #[error("{at}: malformed msgpack: {reason}")]
    Msgpack {
        /// Where.
        at: String,
        /// What.
        reason: String,
    },
    /// Malformed JSON.
    #[error("{at}: malformed JSON: {reason}")]
    Json {
        /// Where.
        at: String,
        /// What.
        reason: String,
    },
    /// JSON cannot say "unknown": only msgpack can carry unknown values.
    #[error("{at}: an unknown value cannot be written as JSON")]
    UnknownInJson {
        /// Where.
        at: String,
    },
    /// A value nested deeper than 64 levels.
    #[error("{at}: nested deeper than {limit} levels")]
    TooDeep {
        /// Where the limit was reached.
        at: String,
        /// The limit.
        limit: usize,
    },
    /// Bytes left over after a whole value.
    #[error("{count} bytes after the end of the value")]
    Trailing {
        /// How many.
        count: usize,
    },
    /// Not a type in Terraform's JSON type syntax.
    #[error("invalid type JSON {text}: {reason}")]
    Type {
        /// The text (its first 200 characters).
        text: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A raw state with no JSON: the flatmap state of Terraform 0.11 and
    /// older, which this crate does not read.
    #[error("the raw state has no JSON (only a legacy flatmap of {entries} entries)")]
    Flatmap {
        /// The flatmap's size.
        entries: usize,
    },
}

/// At most 200 characters of `bytes`, lossily, for an error message.
pub(crate) fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    match text.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.into_owned(),
    }
}

/// A path inside a value, for errors: the steps from the root.
#[derive(Default)]
pub(crate) struct Path(Vec<Step>);

pub(crate) enum Step {
    Attribute(String),
    Key(String),
    Index(usize),
}

impl Path {
    /// [`ValueError::TooDeep`] once the path is deeper than a value may
    /// nest.
    pub(crate) fn check_depth(&self) -> Result<(), ValueError> {
        if self.0.len() > MAX_DEPTH {
            return Err(ValueError::TooDeep {
                at: self.render(),
                limit: MAX_DEPTH,
            });
        }
        Ok(())
    }

    pub(crate) fn push(&mut self, step: Step) {
        self.0.push(step);
    }

    pub(crate) fn pop(&mut self) {
        self.0.pop();
    }

    /// Terraform's spelling of the path.
    pub(crate) fn render(&self) -> String {
        if self.0.is_empty() {
            return "(root)".to_owned();
        }
        let mut out = String::new();
        for step in &self.0 {
            match step {
                Step::Attribute(name) => {
                    out.push('.');
                    out.push_str(&excerpt(name.as_bytes()));
                }
                Step::Key(key) => {
                    out.push_str(&format!("[{:?}]", excerpt(key.as_bytes())));
                }
                Step::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_read_as_terraform_writes_them() {
        let mut path = Path::default();
        assert_eq!(path.render(), "(root)");
        path.push(Step::Attribute("rule".into()));
        path.push(Step::Index(0));
        path.push(Step::Key("a\"b".into()));
        assert_eq!(path.render(), r#".rule[0]["a\"b"]"#);
    }

    #[test]
    fn excerpts_are_bounded() {
        assert_eq!(excerpt(&[b'x'; 500]).chars().count(), 201);
        assert_eq!(excerpt(b"\xffok"), "\u{fffd}ok");
    }
}
