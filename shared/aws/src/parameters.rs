//! Do SSM parameters exist, and may they be read? Asked by name with
//! `GetParameters` and `WithDecryption=false`, ten names a call, so that no
//! secret is ever decrypted to answer; the values in the answer are dropped
//! unread.

use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::describe_sdk_error;

/// `GetParameters` takes at most this many names.
pub const BATCH: usize = 10;

/// What is wrong with the names asked about.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParameterCheck {
    /// No such parameter.
    pub missing: Vec<String>,
    /// The caller may not read it (whether or not it exists).
    pub forbidden: Vec<String>,
}

impl ParameterCheck {
    pub fn is_clean(&self) -> bool {
        self.missing.is_empty() && self.forbidden.is_empty()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("could not check SSM parameters {}: {reason}", names.join(", "))]
pub struct ParameterError {
    pub names: Vec<String>,
    pub reason: String,
}

enum Batch {
    Checked { missing: Vec<String> },
    Denied,
}

async fn get(ssm: &aws_sdk_ssm::Client, names: &[String]) -> Result<Batch, ParameterError> {
    let result = ssm
        .get_parameters()
        .set_names(Some(names.to_vec()))
        .with_decryption(false)
        .send()
        .await;
    match result {
        Ok(out) => Ok(Batch::Checked {
            missing: out.invalid_parameters().to_vec(),
        }),
        Err(e) if e.code() == Some("AccessDeniedException") => Ok(Batch::Denied),
        Err(e) => Err(ParameterError {
            names: names.to_vec(),
            reason: describe_sdk_error(&e),
        }),
    }
}

/// Checks every name in `names` (duplicates are asked once). IAM refuses a
/// whole `GetParameters` call when one name is forbidden, so a refused batch
/// is asked again one name at a time to say which.
pub async fn check(
    ssm: &aws_sdk_ssm::Client,
    names: &[String],
) -> Result<ParameterCheck, ParameterError> {
    let mut unique: Vec<String> = Vec::with_capacity(names.len());
    for n in names {
        if !unique.contains(n) {
            unique.push(n.clone());
        }
    }
    let mut out = ParameterCheck::default();
    for chunk in unique.chunks(BATCH) {
        match get(ssm, chunk).await? {
            Batch::Checked { missing } => out.missing.extend(missing),
            Batch::Denied => {
                for name in chunk {
                    match get(ssm, std::slice::from_ref(name)).await? {
                        Batch::Checked { missing } => out.missing.extend(missing),
                        Batch::Denied => out.forbidden.push(name.clone()),
                    }
                }
            }
        }
    }
    Ok(out)
}
