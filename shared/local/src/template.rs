//! Reading `template.yaml`: the EventBridge rules `gantry dev` recreates
//! with SQS targets, so the local chain routes exactly as the deployed one.

use std::path::Path;

use gantry_core::yaml::{self, Node, Value};

/// One unconditional `AWS::Events::Rule` with an event pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRule {
    /// The logical id in the template.
    pub logical_id: String,
    pub pattern: serde_json::Value,
    /// The logical ids of the rule's targets (functions, queues, log groups).
    pub targets: Vec<String>,
    /// The bus it is on.
    pub bus: RuleBus,
}

/// Which bus a rule is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleBus {
    /// Gantry's own (`EventBusName: !Ref EventBus`), where its functions
    /// publish.
    Gantry,
    /// The account's default bus (no `EventBusName`), where AWS services
    /// such as CodeBuild send their events.
    Default,
}

impl RuleBus {
    /// The bus's name in the local stack.
    pub fn name(self) -> &'static str {
        match self {
            RuleBus::Gantry => crate::stack::names::BUS,
            RuleBus::Default => "default",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{pos}: {message}")]
    Yaml {
        path: String,
        pos: yaml::Pos,
        message: String,
    },
    #[error("{path}: {message}")]
    Shape { path: String, message: String },
}

pub fn read_rules(path: &Path) -> Result<Vec<EventRule>, TemplateError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| TemplateError::Read {
        path: shown.clone(),
        source,
    })?;
    parse_rules(&text).map_err(|e| match e {
        TemplateError::Yaml { pos, message, .. } => TemplateError::Yaml {
            path: shown.clone(),
            pos,
            message,
        },
        TemplateError::Shape { message, .. } => TemplateError::Shape {
            path: shown.clone(),
            message,
        },
        other => other,
    })
}

pub fn parse_rules(text: &str) -> Result<Vec<EventRule>, TemplateError> {
    let limits = yaml::Limits {
        max_bytes: 4 * 1024 * 1024,
        ..yaml::Limits::default()
    };
    let root = yaml::parse(text, limits)
        .map_err(|e| TemplateError::Yaml {
            path: String::new(),
            pos: e.pos,
            message: e.message,
        })?
        .ok_or_else(|| TemplateError::Shape {
            path: String::new(),
            message: "empty template".into(),
        })?;
    let Some(Node {
        value: Value::Map(resources),
        ..
    }) = root.get("Resources")
    else {
        return Err(TemplateError::Shape {
            path: String::new(),
            message: "no Resources mapping".into(),
        });
    };
    // `gantry dev` deploys the parameters' defaults: a pattern's `!Ref`
    // to a parameter is its default.
    let mut defaults = std::collections::HashMap::new();
    if let Some(Node {
        value: Value::Map(parameters),
        ..
    }) = root.get("Parameters")
    {
        for (name, parameter) in parameters {
            if let (Some(name), Some(default)) = (
                name.as_str(),
                parameter.get("Default").and_then(Node::as_str),
            ) {
                defaults.insert(name.to_owned(), default.to_owned());
            }
        }
    }
    let mut rules = Vec::new();
    for (id, resource) in resources {
        if resource.get("Type").and_then(Node::as_str) != Some("AWS::Events::Rule") {
            continue;
        }
        // A rule with a Condition exists only for some parameter values
        // (PipelineNames given, …): `gantry dev` deploys the defaults, where
        // it does not, and its pattern may `!Ref` a parameter dev cannot fill.
        if resource.get("Condition").is_some() {
            continue;
        }
        let Some(properties) = resource.get("Properties") else {
            continue;
        };
        // Scheduled rules have no pattern; they are not part of the chain.
        let Some(pattern) = properties.get("EventPattern") else {
            continue;
        };
        let targets = match properties.get("Targets").map(|t| &t.value) {
            Some(Value::Seq(items)) => items
                .iter()
                .filter_map(|t| t.get("Arn"))
                .filter_map(target_ref)
                .collect(),
            _ => Vec::new(),
        };
        let bus = if properties.get("EventBusName").is_some() {
            RuleBus::Gantry
        } else {
            RuleBus::Default
        };
        rules.push(EventRule {
            logical_id: id.as_str().unwrap_or_default().to_owned(),
            pattern: resolve(pattern, &defaults),
            targets,
            bus,
        });
    }
    Ok(rules)
}

/// The node as JSON, each `!Ref` to a parameter replaced by its default.
fn resolve(node: &Node, defaults: &std::collections::HashMap<String, String>) -> serde_json::Value {
    match &node.value {
        Value::Scalar {
            text,
            tag: Some(tag),
            ..
        } if tag == "Ref" => defaults
            .get(text)
            .map_or_else(|| node.to_json(), |d| d.clone().into()),
        Value::Seq(items) => items.iter().map(|n| resolve(n, defaults)).collect(),
        Value::Map(entries) => entries
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().unwrap_or_default().to_owned(),
                    resolve(v, defaults),
                )
            })
            .collect::<serde_json::Map<_, _>>()
            .into(),
        _ => node.to_json(),
    }
}

/// `!GetAtt Fn.Arn`, `!Ref X` or `{"Fn::GetAtt": [Fn, Arn]}` → the logical id.
fn target_ref(arn: &Node) -> Option<String> {
    if let Some(text) = arn.as_str()
        && arn.tag.is_some()
    {
        return text.split('.').next().map(str::to_owned);
    }
    let get_att = arn.get("Fn::GetAtt").or_else(|| arn.get("Ref"))?;
    match &get_att.value {
        Value::Seq(items) => items.first().and_then(Node::as_str).map(str::to_owned),
        Value::Scalar { text, .. } => text.split('.').next().map(str::to_owned),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_with_a_condition_are_left_to_the_deployed_stack() {
        let text = "\
Conditions:
  HasPipelines: !Not [!Equals [!Join [\",\", !Ref PipelineNames], \"\"]]
Resources:
  Always:
    Type: AWS::Events::Rule
    Properties:
      EventPattern:
        source: [gantry]
      Targets:
        - Id: f
          Arn: !GetAtt Fn.Arn
  Sometimes:
    Type: AWS::Events::Rule
    Condition: HasPipelines
    Properties:
      EventPattern:
        source: [aws.codepipeline]
        detail:
          pipeline: !Ref PipelineNames
      Targets:
        - Id: f
          Arn: !GetAtt Fn.Arn
";
        let rules = parse_rules(text).expect("rules");
        let ids: Vec<&str> = rules.iter().map(|r| r.logical_id.as_str()).collect();
        assert_eq!(ids, ["Always"]);
        assert_eq!(rules[0].targets, ["Fn"]);
    }

    /// CodeBuild's rule is on the default bus and filters on the project
    /// prefix: the local copy must be too, with the prefix's default, or
    /// no build's end would reach build-events.
    #[test]
    fn a_rule_keeps_its_bus_and_its_parameter_refs_take_their_defaults() {
        let text = "\
Parameters:
  ProjectPrefix:
    Type: String
    Default: gantry-
Resources:
  Ours:
    Type: AWS::Events::Rule
    Properties:
      EventBusName: !Ref EventBus
      EventPattern:
        source: [gantry]
  CodeBuilds:
    Type: AWS::Events::Rule
    Properties:
      EventPattern:
        source: [aws.codebuild]
        detail:
          project-name: [{prefix: !Ref ProjectPrefix}]
";
        let rules = parse_rules(text).expect("rules");
        assert_eq!(rules[0].bus, RuleBus::Gantry);
        assert_eq!(rules[1].bus, RuleBus::Default);
        assert_eq!(
            rules[1].pattern["detail"]["project-name"][0]["prefix"],
            "gantry-"
        );
    }
}
