//! What the example provider does, the same under both protocols: the
//! `example_file` resource (a file under the provider's `directory`) and
//! data source (one read), on `rpcplugin::terraform` values.

use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

use rpcplugin::terraform::{Type, Value};

/// A diagnostic before it becomes the protocol's own.
pub struct Problem {
    pub summary: String,
    pub detail: String,
    /// The top-level attribute it is about, if one.
    pub attribute: Option<&'static str>,
}

impl Problem {
    /// A value Terraform sent that could not be read, about no attribute
    /// in particular.
    pub fn unreadable(summary: &str, err: &rpcplugin::terraform::ValueError) -> Self {
        Problem::new(summary, err.to_string(), None)
    }

    fn new(summary: &str, detail: impl Into<String>, attribute: Option<&'static str>) -> Self {
        Problem {
            summary: summary.into(),
            detail: detail.into(),
            attribute,
        }
    }
}

/// A plan: the planned state and the attributes whose change replaces the
/// resource.
pub struct Plan {
    pub planned: Value,
    pub requires_replace: Vec<&'static str>,
}

/// The provider: where files go, once configured.
#[derive(Default)]
pub struct Files {
    directory: Mutex<Option<PathBuf>>,
}

/// The provider's configuration: `directory` (optional; Terraform's
/// working directory when unset).
pub fn provider_type() -> Type {
    Type::object([("directory", Type::String)])
}

/// The resource's state: `id` (computed, the path), `path` and `content`.
pub fn file_type() -> Type {
    Type::object([
        ("id", Type::String),
        ("path", Type::String),
        ("content", Type::String),
    ])
}

/// The data source's: `path`, and `content` read from it.
pub fn data_type() -> Type {
    Type::object([("path", Type::String), ("content", Type::String)])
}

fn text(value: &Value, name: &str) -> Option<String> {
    value.get(name).and_then(Value::as_str).map(str::to_owned)
}

/// A path that names a file inside the directory: relative, no `..`,
/// not empty or `.`.
fn check_path(value: &Value) -> Vec<Problem> {
    let Some(path) = text(value, "path") else {
        // Null or unknown until apply: nothing to check yet.
        return Vec::new();
    };
    let components: Vec<_> = Path::new(&path).components().collect();
    let escapes = components
        .iter()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir));
    let names_a_file = matches!(components.last(), Some(Component::Normal(_)));
    if escapes || !names_a_file {
        return vec![Problem::new(
            "Invalid file path",
            format!(
                "{path:?} must be a relative path inside the provider's directory, without \"..\""
            ),
            Some("path"),
        )];
    }
    Vec::new()
}

impl Files {
    pub fn validate_provider(config: &Value) -> Vec<Problem> {
        match config.get("directory") {
            Some(Value::String(dir)) if dir.is_empty() => vec![Problem::new(
                "Invalid directory",
                "directory must not be empty (leave it out for the working directory)",
                Some("directory"),
            )],
            _ => Vec::new(),
        }
    }

    pub fn validate_file(config: &Value) -> Vec<Problem> {
        check_path(config)
    }

    pub fn configure(&self, config: &Value) -> Vec<Problem> {
        let directory = text(config, "directory").unwrap_or_else(|| ".".into());
        tracing::info!(directory = %directory, "files go under the configured directory");
        *self.directory.lock().unwrap() = Some(PathBuf::from(directory));
        Vec::new()
    }

    fn resolve(&self, path: &str) -> Result<PathBuf, Problem> {
        let base = self.directory.lock().unwrap().clone().ok_or_else(|| {
            Problem::new(
                "Provider not configured",
                "Terraform did not call Configure",
                None,
            )
        })?;
        Ok(base.join(path))
    }

    /// The resource as the file now is: `None` when it is gone.
    async fn current(&self, path: &str) -> Result<Option<String>, Problem> {
        let full = self.resolve(path)?;
        match tokio::fs::read(&full).await {
            Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(Problem::new(
                "Cannot read file",
                format!("{}: {err}", full.display()),
                Some("path"),
            )),
        }
    }

    /// Drift: the state refreshed from the file. Gone: null, so that
    /// Terraform plans to create it again; changed: the content found.
    pub async fn read(&self, state: Value) -> Result<Value, Problem> {
        let Some(path) = text(&state, "path") else {
            return Ok(state);
        };
        Ok(match self.current(&path).await? {
            None => Value::Null,
            Some(content) => Value::object([
                ("id", path.clone().into()),
                ("path", path.into()),
                ("content", content.into()),
            ]),
        })
    }

    /// The proposed state with `id` filled: unknown on create, kept on
    /// update, unknown again when `path` changes (a replacement).
    pub fn plan(prior: &Value, proposed: Value) -> Plan {
        let Value::Object(mut planned) = proposed else {
            // Null: destroy.
            return Plan {
                planned: proposed,
                requires_replace: Vec::new(),
            };
        };
        let moved = !prior.is_null() && prior.get("path") != planned.get("path");
        let id = match prior.get("id") {
            Some(id @ Value::String(_)) if !moved => id.clone(),
            _ => Value::Unknown,
        };
        planned.insert("id".into(), id);
        Plan {
            planned: Value::Object(planned),
            requires_replace: if moved { vec!["path"] } else { Vec::new() },
        }
    }

    /// Writes or deletes the file; the new state.
    pub async fn apply(&self, prior: &Value, planned: Value) -> Result<Value, Problem> {
        if planned.is_null() {
            if let Some(path) = text(prior, "path") {
                let full = self.resolve(&path)?;
                match tokio::fs::remove_file(&full).await {
                    Ok(()) => {}
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                    Err(err) => {
                        return Err(Problem::new(
                            "Cannot delete file",
                            format!("{}: {err}", full.display()),
                            Some("path"),
                        ));
                    }
                }
            }
            return Ok(Value::Null);
        }
        let (Some(path), Some(content)) = (text(&planned, "path"), text(&planned, "content"))
        else {
            return Err(Problem::new(
                "Unknown value at apply",
                "path and content must be known when the file is written",
                None,
            ));
        };
        let full = self.resolve(&path)?;
        if let Some(parent) = full.parent() {
            let _ = tokio::fs::create_dir_all(parent).await;
        }
        tokio::fs::write(&full, content.as_bytes())
            .await
            .map_err(|err| {
                Problem::new(
                    "Cannot write file",
                    format!("{}: {err}", full.display()),
                    Some("path"),
                )
            })?;
        Ok(Value::object([
            ("id", path.clone().into()),
            ("path", path.into()),
            ("content", content.into()),
        ]))
    }

    /// `terraform import example_file.NAME PATH`: the file as it is.
    pub async fn import(&self, id: &str) -> Result<Value, Problem> {
        let probe = Value::object([("path", id.into())]);
        if let Some(problem) = check_path(&probe).into_iter().next() {
            return Err(problem);
        }
        match self.current(id).await? {
            Some(content) => Ok(Value::object([
                ("id", id.into()),
                ("path", id.into()),
                ("content", content.into()),
            ])),
            None => Err(Problem::new(
                "Cannot import a file that does not exist",
                format!("no file {id:?} in the provider's directory"),
                None,
            )),
        }
    }

    /// The data source: the file's content.
    pub async fn read_data(&self, config: &Value) -> Result<Value, Problem> {
        let path = text(config, "path").unwrap_or_default();
        match self.current(&path).await? {
            Some(content) => Ok(Value::object([
                ("path", path.into()),
                ("content", content.into()),
            ])),
            None => Err(Problem::new(
                "File not found",
                format!("no file {path:?} in the provider's directory"),
                Some("path"),
            )),
        }
    }
}
