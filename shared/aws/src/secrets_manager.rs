//! Do Secrets Manager secrets exist, and may they be read? Asked by id with
//! `DescribeSecret`, which gives a secret's metadata and never its value:
//! nothing is decrypted to answer. A secret scheduled for deletion counts
//! as missing (CodeBuild cannot read it).

use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::describe_sdk_error;
use crate::on_first_use::OnFirstUse;
use crate::parameters::ParameterCheck;

#[derive(Debug, thiserror::Error)]
#[error("could not check the Secrets Manager secret {id}: {reason}")]
pub struct SecretCheckError {
    pub id: String,
    pub reason: String,
}

/// Checks each secret id in `ids` (duplicates are asked once): the ids
/// with no such secret, and those the caller may not describe.
pub async fn check(
    client: &OnFirstUse<aws_sdk_secretsmanager::Client>,
    ids: &[String],
) -> Result<ParameterCheck, SecretCheckError> {
    let mut out = ParameterCheck::default();
    let mut asked: Vec<&String> = Vec::with_capacity(ids.len());
    for id in ids {
        if asked.contains(&id) {
            continue;
        }
        asked.push(id);
        // The client is made here, by the first build that names a secret.
        match client.describe_secret().secret_id(id).send().await {
            Ok(secret) if secret.deleted_date().is_some() => out.missing.push(id.clone()),
            Ok(_) => {}
            Err(e) if e.code() == Some("AccessDeniedException") => out.forbidden.push(id.clone()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                out.missing.push(id.clone())
            }
            Err(e) => {
                return Err(SecretCheckError {
                    id: id.clone(),
                    reason: describe_sdk_error(&e),
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::check;
    use crate::on_first_use::OnFirstUse;

    #[tokio::test]
    async fn a_build_that_names_no_secret_makes_no_client() {
        // Making a client costs half a million instructions of the
        // invocation; a buildspec without `secrets-manager` must not pay it.
        let sdk = aws_config::SdkConfig::builder().build();
        let client = OnFirstUse::new(&sdk, |_| panic!("the Secrets Manager client was made"));
        let checked = check(&client, &[]).await.expect("nothing to ask");
        assert!(checked.missing.is_empty() && checked.forbidden.is_empty());
    }
}
