//! template.yaml as CloudFormation would deploy it, for tests that reason
//! about what each role may do: `Fn::ForEach` expanded, conditions and
//! intrinsic functions resolved for given parameter values, every resource
//! given the ARN CloudFormation would. And a small IAM evaluator over the
//! result: may this role do this action on this resource?
//!
//! Conservative where it must be: an `Allow` with a condition counts as
//! allowed (conditions only narrow), so "this role cannot reach that"
//! holds for every value a condition could take.

use std::collections::BTreeMap;

use gantry_core::yaml::{self, Node, Value as Yaml};
use serde_json::{Map, Value, json};

pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";
/// The bucket's name as the tests deploy it.
pub const BUCKET: &str = "gantry-artifactbucket-test";

/// A template resolved for one set of parameter values.
pub struct Deployed {
    pub resources: BTreeMap<String, Value>,
    parameters: BTreeMap<String, Value>,
    conditions: BTreeMap<String, bool>,
}

/// `!Ref X` → `{"Ref": "X"}` and so on: the long forms, as JSON.
fn long_form(node: &Node) -> Value {
    let tag = node.tag.as_deref().or(match &node.value {
        Yaml::Scalar { tag, .. } => tag.as_deref(),
        _ => None,
    });
    let plain = match &node.value {
        Yaml::Null => Value::Null,
        Yaml::Scalar { text, .. } => Value::String(text.clone()),
        Yaml::Seq(items) => items.iter().map(long_form).collect(),
        Yaml::Map(entries) => entries
            .iter()
            .map(|(k, v)| (k.as_str().unwrap_or_default().to_owned(), long_form(v)))
            .collect::<Map<_, _>>()
            .into(),
    };
    match tag {
        None => plain,
        Some("Ref") => json!({ "Ref": plain }),
        Some("Condition") => json!({ "Condition": plain }),
        Some("GetAtt") => match plain {
            Value::String(s) => {
                let (a, b) = s.split_once('.').unwrap_or((&s, ""));
                json!({ "Fn::GetAtt": [a, b] })
            }
            other => json!({ "Fn::GetAtt": other }),
        },
        Some(other) => json!({ format!("Fn::{other}"): plain }),
    }
}

/// Every string in `value`, keys included, with `${id}` and `&{id}`
/// replaced, as `Fn::ForEach` does.
fn substitute(value: &Value, id: &str, with: &str) -> Value {
    let s = |t: &str| {
        t.replace(&format!("${{{id}}}"), with).replace(
            &format!("&{{{id}}}"),
            &with
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .collect::<String>(),
        )
    };
    match value {
        Value::String(t) => Value::String(s(t)),
        Value::Array(items) => items.iter().map(|v| substitute(v, id, with)).collect(),
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| (s(k), substitute(v, id, with)))
            .collect::<Map<_, _>>()
            .into(),
        other => other.clone(),
    }
}

impl Deployed {
    /// template.yaml with the parameters' defaults, `overrides` replacing
    /// some (a list parameter as a JSON array).
    pub fn from_template(text: &str, overrides: &[(&str, Value)]) -> Deployed {
        let limits = yaml::Limits {
            max_bytes: 4 * 1024 * 1024,
            ..yaml::Limits::default()
        };
        let root = yaml::parse(text, limits)
            .expect("template.yaml parses")
            .expect("template.yaml is not empty");
        let root = long_form(&root);
        let mut parameters = BTreeMap::new();
        if let Some(Value::Object(params)) = root.get("Parameters") {
            for (name, p) in params {
                let default = p.get("Default").cloned().unwrap_or(Value::Null);
                let value = match (p["Type"].as_str(), default) {
                    (Some("CommaDelimitedList"), Value::String(s)) => s
                        .split(',')
                        .filter(|x| !x.is_empty())
                        .map(|x| Value::String(x.trim().to_owned()))
                        .collect(),
                    (_, v) => v,
                };
                parameters.insert(name.clone(), value);
            }
        }
        for (name, value) in overrides {
            parameters.insert((*name).to_owned(), value.clone());
        }
        let mut deployed = Deployed {
            resources: BTreeMap::new(),
            parameters,
            conditions: BTreeMap::new(),
        };
        if let Some(Value::Object(conditions)) = root.get("Conditions") {
            for (name, c) in conditions {
                let v = deployed.condition(c, conditions);
                deployed.conditions.insert(name.clone(), v);
            }
        }
        let mut raw = BTreeMap::new();
        if let Some(Value::Object(resources)) = root.get("Resources") {
            for (id, r) in resources {
                if id.starts_with("Fn::ForEach::") {
                    let (identifier, collection, fragment) = (&r[0], &r[1], &r[2]);
                    let identifier = identifier.as_str().expect("ForEach identifier");
                    let values = match deployed.resolve(collection) {
                        Value::Array(v) => v,
                        other => panic!("ForEach over {other}"),
                    };
                    for v in values {
                        let v = v.as_str().expect("a string").to_owned();
                        if let Value::Object(m) = substitute(fragment, identifier, &v) {
                            raw.extend(m);
                        }
                    }
                } else {
                    raw.insert(id.clone(), r.clone());
                }
            }
        }
        raw.retain(|_, r| {
            r.get("Condition")
                .and_then(Value::as_str)
                .is_none_or(|c| deployed.conditions.get(c).copied().unwrap_or(false))
        });
        // Resolve twice: a resource's ARN may need its own resolved name.
        deployed.resources = raw.clone();
        let resolved: BTreeMap<String, Value> = raw
            .iter()
            .map(|(id, r)| (id.clone(), deployed.resolve(r)))
            .collect();
        deployed.resources = resolved;
        let resolved: BTreeMap<String, Value> = raw
            .iter()
            .map(|(id, r)| (id.clone(), deployed.resolve(r)))
            .collect();
        deployed.resources = resolved;
        deployed
    }

    fn condition(&self, c: &Value, all: &Map<String, Value>) -> bool {
        if let Some(name) = c.get("Condition").and_then(Value::as_str) {
            return all.get(name).is_some_and(|c| self.condition(c, all));
        }
        if let Some(args) = c.get("Fn::Equals") {
            return self.resolve(&args[0]) == self.resolve(&args[1])
                || self.resolve(&args[0]).to_string().trim_matches('"')
                    == self.resolve(&args[1]).to_string().trim_matches('"');
        }
        if let Some(args) = c.get("Fn::Not") {
            return !self.condition(&args[0], all);
        }
        if let Some(Value::Array(args)) = c.get("Fn::And") {
            return args.iter().all(|a| self.condition(a, all));
        }
        if let Some(Value::Array(args)) = c.get("Fn::Or") {
            return args.iter().any(|a| self.condition(a, all));
        }
        panic!("unsupported condition {c}")
    }

    /// `Ref` of a name: a parameter, a pseudo parameter, or a resource's
    /// physical id.
    fn reference(&self, name: &str) -> Option<Value> {
        let pseudo = match name {
            "AWS::Partition" => Some("aws"),
            "AWS::Region" => Some(REGION),
            "AWS::AccountId" => Some(ACCOUNT),
            "AWS::URLSuffix" => Some("amazonaws.com"),
            "AWS::StackName" => Some("gantry"),
            "AWS::NoValue" => return None,
            _ => None,
        };
        if let Some(p) = pseudo {
            return Some(Value::String(p.to_owned()));
        }
        if let Some(p) = self.parameters.get(name) {
            return Some(p.clone());
        }
        let r = self.resources.get(name)?;
        let props = &r["Properties"];
        let named = |key: &str| props[key].as_str().map(str::to_owned);
        Some(Value::String(match r["Type"].as_str() {
            Some("AWS::S3::Bucket") => BUCKET.to_owned(),
            Some("AWS::CodeBuild::Project") => named("Name").unwrap_or_else(|| name.to_owned()),
            Some("AWS::Logs::LogGroup") => named("LogGroupName").unwrap_or_else(|| name.to_owned()),
            Some("AWS::ECR::Repository") => {
                named("RepositoryName").unwrap_or_else(|| name.to_lowercase())
            }
            Some("AWS::Events::EventBus") => named("Name").unwrap_or_else(|| name.to_owned()),
            _ => name.to_owned(),
        }))
    }

    fn get_att(&self, id: &str, attribute: &str) -> Value {
        let physical = self
            .reference(id)
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| id.to_owned());
        let r = self.resources.get(id).cloned().unwrap_or(Value::Null);
        let kind = r["Type"].as_str().unwrap_or_default().to_owned();
        Value::String(match (kind.as_str(), attribute) {
            ("AWS::IAM::Role", "Arn") => format!("arn:aws:iam::{ACCOUNT}:role/{physical}"),
            ("AWS::S3::Bucket", "Arn") => format!("arn:aws:s3:::{physical}"),
            ("AWS::ECR::Repository", "Arn") => {
                format!("arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{physical}")
            }
            ("AWS::ECR::Repository", "RepositoryUri") => {
                format!("{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{physical}")
            }
            ("AWS::CodeBuild::Project", "Arn") => {
                format!("arn:aws:codebuild:{REGION}:{ACCOUNT}:project/{physical}")
            }
            ("AWS::Logs::LogGroup", "Arn") => {
                format!("arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{physical}:*")
            }
            ("AWS::SQS::Queue", "Arn") => format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{physical}"),
            ("AWS::Events::EventBus", "Arn") => {
                format!("arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{physical}")
            }
            ("AWS::Serverless::Function", "Arn") => {
                format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{physical}")
            }
            _ => format!("{id}.{attribute}"),
        })
    }

    fn sub(&self, text: &str, vars: &Map<String, Value>) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(at) = rest.find("${") {
            out.push_str(&rest[..at]);
            let after = &rest[at + 2..];
            let Some(end) = after.find('}') else {
                out.push_str(&rest[at..]);
                return out;
            };
            let name = &after[..end];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            } else if let Some(v) = vars.get(name) {
                out.push_str(self.resolve(v).as_str().unwrap_or_default());
            } else if let Some((id, attribute)) = name.split_once('.') {
                out.push_str(self.get_att(id, attribute).as_str().unwrap_or_default());
            } else {
                let v = self.reference(name).unwrap_or(Value::Null);
                match v {
                    Value::String(s) => out.push_str(&s),
                    Value::Array(items) => out.push_str(
                        &items
                            .iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join(","),
                    ),
                    other => out.push_str(&other.to_string()),
                }
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        out
    }

    /// `value` with every intrinsic function evaluated; `AWS::NoValue`
    /// removes the key or list item that holds it.
    pub fn resolve(&self, value: &Value) -> Value {
        self.resolve_opt(value).unwrap_or(Value::Null)
    }

    fn resolve_opt(&self, value: &Value) -> Option<Value> {
        match value {
            Value::Array(items) => Some(items.iter().filter_map(|v| self.resolve_opt(v)).collect()),
            Value::Object(m) if m.len() == 1 => {
                let (k, arg) = m.iter().next()?;
                match k.as_str() {
                    "Ref" => {
                        let name = self.resolve(arg);
                        self.reference(name.as_str().unwrap_or_default())
                    }
                    "Fn::GetAtt" => {
                        let parts = self.resolve(arg);
                        Some(self.get_att(
                            parts[0].as_str().unwrap_or_default(),
                            parts[1].as_str().unwrap_or_default(),
                        ))
                    }
                    "Fn::Sub" => Some(Value::String(match arg {
                        Value::String(t) => self.sub(t, &Map::new()),
                        Value::Array(a) => self.sub(
                            a[0].as_str().unwrap_or_default(),
                            a[1].as_object().unwrap_or(&Map::new()),
                        ),
                        other => panic!("Fn::Sub of {other}"),
                    })),
                    "Fn::Join" => {
                        let sep = arg[0].as_str().unwrap_or_default();
                        let items = self.resolve(&arg[1]);
                        Some(Value::String(
                            items
                                .as_array()
                                .map(|a| {
                                    a.iter()
                                        .filter_map(Value::as_str)
                                        .collect::<Vec<_>>()
                                        .join(sep)
                                })
                                .unwrap_or_default(),
                        ))
                    }
                    "Fn::Split" => {
                        let sep = arg[0].as_str().unwrap_or_default();
                        let text = self.resolve(&arg[1]);
                        Some(
                            text.as_str()
                                .unwrap_or_default()
                                .split(sep)
                                .map(|s| Value::String(s.to_owned()))
                                .collect(),
                        )
                    }
                    "Fn::Select" => {
                        let i = self.resolve(&arg[0]);
                        let i = i
                            .as_str()
                            .and_then(|s| s.parse::<usize>().ok())
                            .or_else(|| i.as_u64().and_then(|n| usize::try_from(n).ok()))
                            .unwrap_or(0);
                        self.resolve(&arg[1]).get(i).cloned()
                    }
                    "Fn::If" => {
                        let name = arg[0].as_str().unwrap_or_default();
                        let chosen = if self.conditions.get(name).copied().unwrap_or(false) {
                            &arg[1]
                        } else {
                            &arg[2]
                        };
                        self.resolve_opt(chosen)
                    }
                    _ => Some(Value::Object(
                        m.iter()
                            .filter_map(|(k, v)| Some((k.clone(), self.resolve_opt(v)?)))
                            .collect(),
                    )),
                }
            }
            Value::Object(m) => Some(Value::Object(
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), self.resolve_opt(v)?)))
                    .collect(),
            )),
            other => Some(other.clone()),
        }
    }

    /// The IAM statements that apply to a role: its inline policies, or a
    /// SAM function's `Policies` (the role SAM generates), and those of the
    /// `AWS::IAM::Policy` resources attached to it.
    pub fn statements(&self, id: &str) -> Vec<Value> {
        let r = self
            .resources
            .get(id)
            .unwrap_or_else(|| panic!("no resource {id}"));
        let mut policies: Vec<&Value> = r["Properties"]["Policies"]
            .as_array()
            .into_iter()
            .flatten()
            .collect();
        for attached in self.of_type("AWS::IAM::Policy") {
            let props = &self.resources[&attached]["Properties"];
            let roles = props["Roles"].as_array().into_iter().flatten();
            if roles.into_iter().any(|role| role.as_str() == Some(id)) {
                policies.push(props);
            }
        }
        let mut out = Vec::new();
        for p in policies {
            let doc = if p.get("PolicyDocument").is_some() {
                &p["PolicyDocument"]
            } else {
                p
            };
            match &doc["Statement"] {
                Value::Array(s) => out.extend(s.iter().cloned()),
                Value::Object(_) => out.push(doc["Statement"].clone()),
                _ => {}
            }
        }
        out
    }

    /// May the role (or SAM function) `id` call `action` on `resource`?
    /// Allowed by some statement and denied by none; conditions ignored.
    pub fn allows(&self, id: &str, action: &str, resource: &str) -> bool {
        let statements = self.statements(id);
        let matches = |s: &Value| {
            let list = |v: &Value| -> Vec<String> {
                match v {
                    Value::String(s) => vec![s.clone()],
                    Value::Array(a) => a
                        .iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect(),
                    _ => Vec::new(),
                }
            };
            list(&s["Action"])
                .iter()
                .any(|a| wildcard(&a.to_ascii_lowercase(), &action.to_ascii_lowercase()))
                && list(&s["Resource"]).iter().any(|r| wildcard(r, resource))
        };
        let effect = |s: &Value, e: &str| s["Effect"].as_str() == Some(e);
        statements.iter().any(|s| effect(s, "Allow") && matches(s))
            && !statements.iter().any(|s| effect(s, "Deny") && matches(s))
    }

    /// The ids of the resources of `kind`.
    pub fn of_type(&self, kind: &str) -> Vec<String> {
        self.resources
            .iter()
            .filter(|(_, r)| r["Type"].as_str() == Some(kind))
            .map(|(id, _)| id.clone())
            .collect()
    }
}

/// IAM's matching: `*` any run of characters, `?` any one.
pub fn wildcard(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::wildcard;

    #[test]
    fn iam_wildcards() {
        assert!(wildcard("ssm:*", "ssm:GetParameters"));
        assert!(wildcard("arn:a:*/x/*", "arn:a:b/x/y"));
        assert!(!wildcard("arn:a:*/x/*", "arn:a:b/y/x"));
        assert!(wildcard("a?c", "abc"));
        assert!(!wildcard("abc", "abcd"));
    }
}
