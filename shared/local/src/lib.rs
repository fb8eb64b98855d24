//! The local stack, for `gantry dev` and the tests, never for a function:
//! the moto server, the loopback proxy in front of it (with the tests'
//! fault table behind the `faults` feature), the stack provisioned from
//! template.yaml (bus, rules with SQS targets, parameters, bucket, the
//! CodeBuild project), the tap that reads what the rules routed, and the
//! functions driven from their rules' queues as EventBridge would, and the
//! executor that runs a buildspec's phases on this machine.

pub mod builds;
pub mod executor;
pub mod functions;
pub mod moto;
pub mod proxy;
pub mod stack;
pub mod tap;
pub mod template;
