//! The empty function: the same runtime as Gantry's functions (a
//! current-thread tokio runtime and `lambda_runtime`), answering `{}` to
//! every event with nothing else. What a function costs beyond it is
//! Gantry's own.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|_: LambdaEvent<Value>| async {
        Ok::<Value, Error>(Value::Object(serde_json::Map::new()))
    }))
    .await
}
