//! Programmable faults for the proxy in front of moto: for the requests
//! that match, answer as a failing AWS would (a throttle, a 5xx, S3's
//! `SlowDown`), answer late, or not answer at all, for the next N matches
//! or until cleared. Dev and test tooling only: the functions never know.

use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Which requests a fault applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    /// JSON protocols (SSM, EventBridge, CodeBuild, SQS): the
    /// `X-Amz-Target` header is this one (`AWSEvents.PutEvents`) or, when it
    /// ends with a dot, starts with it (`AmazonSSM.`: every SSM operation).
    Target(String),
    /// REST protocols (S3): the method (any when `None`) and a path prefix
    /// (`/bucket/deliveries/`).
    Path {
        method: Option<String>,
        prefix: String,
    },
    /// Every request: the whole endpoint is down.
    Any,
}

impl Match {
    pub fn target(target: &str) -> Match {
        Match::Target(target.to_owned())
    }

    pub fn path(method: Option<&str>, prefix: &str) -> Match {
        Match::Path {
            method: method.map(str::to_ascii_uppercase),
            prefix: prefix.to_owned(),
        }
    }

    /// Whether a request with this method, path (and query) and target is one.
    pub fn matches(&self, method: &str, path: &str, target: Option<&str>) -> bool {
        match self {
            Match::Any => true,
            Match::Target(want) => target.is_some_and(|t| {
                if want.ends_with('.') {
                    t.starts_with(want.as_str())
                } else {
                    t == want
                }
            }),
            Match::Path {
                method: want_method,
                prefix,
            } => {
                // S3 is REST: a JSON-protocol request is never an S3 one.
                target.is_none()
                    && want_method
                        .as_deref()
                        .is_none_or(|m| m.eq_ignore_ascii_case(method))
                    && path.starts_with(prefix.as_str())
            }
        }
    }
}

/// What the proxy does with a matching request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer this instead of moto; the request never reaches it.
    Respond {
        status: u16,
        content_type: String,
        body: String,
    },
    /// Forward after this long: a slow service that did the work.
    Delay(Duration),
    /// Hold the request this long, then close the connection without
    /// forwarding it: a stalled service that did nothing. Past the SDK's
    /// timeout the client has given up first.
    Stall(Duration),
    /// Close the connection at once, unanswered and not forwarded.
    Drop,
}

const AWS_JSON: &str = "application/x-amz-json-1.1";

impl Fault {
    /// An awsJson1_1 error as AWS sends it (SSM, EventBridge, CodeBuild):
    /// `{"__type": code, "message": message}`; the SDK reads the code from
    /// `__type`.
    pub fn json_error(status: u16, code: &str, message: &str) -> Fault {
        Fault::Respond {
            status,
            content_type: AWS_JSON.into(),
            body: serde_json::json!({ "__type": code, "message": message }).to_string(),
        }
    }

    /// A 200 with this JSON body: an answer moto cannot give (CodeBuild's
    /// test reports, which it does not implement).
    pub fn json_answer(body: serde_json::Value) -> Fault {
        Fault::Respond {
            status: 200,
            content_type: AWS_JSON.into(),
            body: body.to_string(),
        }
    }

    /// `ThrottlingException`, HTTP 400: the SDK retries it as a throttle.
    pub fn throttling() -> Fault {
        Fault::json_error(400, "ThrottlingException", "Rate exceeded")
    }

    /// HTTP 500 `InternalFailure` (the SDK retries it as transient).
    pub fn internal_error() -> Fault {
        Fault::json_error(500, "InternalFailure", "We encountered an internal error.")
    }

    /// HTTP 503 `ServiceUnavailableException`.
    pub fn unavailable() -> Fault {
        Fault::json_error(503, "ServiceUnavailableException", "Service unavailable")
    }

    /// An S3 REST-XML error.
    pub fn s3_error(status: u16, code: &str, message: &str) -> Fault {
        Fault::Respond {
            status,
            content_type: "application/xml".into(),
            body: format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>GANTRYFAULT0001</RequestId><HostId>gantry-fault</HostId></Error>"
            ),
        }
    }

    /// S3's throttle: HTTP 503 `SlowDown`.
    pub fn s3_slow_down() -> Fault {
        Fault::s3_error(503, "SlowDown", "Please reduce your request rate.")
    }

    /// PutEvents answered 200 with the entry refused (`FailedEntryCount` 1).
    pub fn put_events_partial_failure() -> Fault {
        Fault::Respond {
            status: 200,
            content_type: AWS_JSON.into(),
            body: serde_json::json!({
                "FailedEntryCount": 1,
                "Entries": [{ "ErrorCode": "InternalFailure", "ErrorMessage": "Internal service error" }]
            })
            .to_string(),
        }
    }
}

/// For how many matching requests a fault holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Times {
    Next(u32),
    Always,
}

#[derive(Debug)]
struct Rule {
    matcher: Match,
    fault: Fault,
    remaining: Times,
    served: u32,
}

/// The proxy's fault table: rules in the order injected, the first rule
/// that matches and has requests left applies.
#[derive(Debug, Clone, Default)]
pub struct Faults(Arc<Mutex<Vec<Rule>>>);

impl Faults {
    pub fn inject(&self, matcher: Match, fault: Fault, times: Times) {
        if let Ok(mut rules) = self.0.lock() {
            rules.push(Rule {
                matcher,
                fault,
                remaining: times,
                served: 0,
            });
        }
    }

    /// Every fault gone: the service recovers.
    pub fn clear(&self) {
        if let Ok(mut rules) = self.0.lock() {
            rules.clear();
        }
    }

    /// How many requests got a fault so far (cleared rules not counted).
    pub fn served(&self) -> u32 {
        self.0
            .lock()
            .map(|rules| rules.iter().map(|r| r.served).sum())
            .unwrap_or(0)
    }

    /// The fault for this request, if any; counts it against its rule.
    pub fn take(&self, method: &str, path: &str, target: Option<&str>) -> Option<Fault> {
        let mut rules = self.0.lock().ok()?;
        let rule = rules
            .iter_mut()
            .find(|r| r.remaining != Times::Next(0) && r.matcher.matches(method, path, target))?;
        if let Times::Next(n) = &mut rule.remaining {
            *n -= 1;
        }
        rule.served += 1;
        Some(rule.fault.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_match_exactly_or_by_service_prefix() {
        let put = Match::target("AWSEvents.PutEvents");
        assert!(put.matches("POST", "/", Some("AWSEvents.PutEvents")));
        assert!(!put.matches("POST", "/", Some("AWSEvents.PutEventsX")));
        assert!(!put.matches("POST", "/", Some("AWSEvents.ListRules")));
        assert!(!put.matches("POST", "/", None));
        let ssm = Match::target("AmazonSSM.");
        assert!(ssm.matches("POST", "/", Some("AmazonSSM.GetParameters")));
        assert!(ssm.matches("POST", "/", Some("AmazonSSM.GetParameter")));
        assert!(!ssm.matches("POST", "/", Some("AWSEvents.PutEvents")));
    }

    #[test]
    fn paths_match_method_and_prefix_and_never_a_json_request() {
        let put = Match::path(Some("put"), "/bucket/deliveries/");
        assert!(put.matches("PUT", "/bucket/deliveries/abc", None));
        assert!(!put.matches("GET", "/bucket/deliveries/abc", None));
        assert!(!put.matches("PUT", "/bucket/starts/abc", None));
        assert!(!put.matches(
            "PUT",
            "/bucket/deliveries/abc",
            Some("AmazonSSM.GetParameter")
        ));
        let any_method = Match::path(None, "/bucket/");
        assert!(any_method.matches("DELETE", "/bucket/x?x-id=DeleteObject", None));
        assert!(Match::Any.matches("GET", "/", Some("AnyThing")));
    }

    #[test]
    fn a_rule_holds_for_its_count_then_the_next_rule_or_nothing_applies() {
        let faults = Faults::default();
        faults.inject(
            Match::target("AWSEvents.PutEvents"),
            Fault::throttling(),
            Times::Next(2),
        );
        faults.inject(Match::Any, Fault::Drop, Times::Always);
        let put = |f: &Faults| f.take("POST", "/", Some("AWSEvents.PutEvents"));
        assert_eq!(put(&faults), Some(Fault::throttling()));
        assert_eq!(put(&faults), Some(Fault::throttling()));
        assert_eq!(put(&faults), Some(Fault::Drop), "the first rule is spent");
        assert_eq!(faults.served(), 3);
        faults.clear();
        assert_eq!(put(&faults), None);
        assert_eq!(faults.take("GET", "/b/k", None), None);
    }

    #[test]
    fn canned_errors_have_the_wire_shape_the_sdk_reads() {
        let Fault::Respond {
            status,
            content_type,
            body,
        } = Fault::throttling()
        else {
            panic!("a response")
        };
        assert_eq!((status, content_type.as_str()), (400, AWS_JSON));
        let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        assert_eq!(json["__type"], "ThrottlingException");
        let Fault::Respond { status, body, .. } = Fault::s3_slow_down() else {
            panic!("a response")
        };
        assert_eq!(status, 503);
        assert!(body.contains("<Code>SlowDown</Code>"), "{body}");
    }
}
