//! The delegation tree: the forest of identities along the `:` hierarchy, each node with its
//! permissions, lifetimes, realm role and violations. Identities between two configured ones
//! that are not configured themselves appear as intermediate nodes.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::decide::Permissions;
use super::findings::{Finding, Severity};
use super::model::Policy;
use crate::token::is_strict_descendant;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum NodeKind {
    /// A `[[clients]]` entry.
    Client {
        identity_token_duration: Option<u64>,
        delegatable: bool,
        realm: bool,
        operator: bool,
    },
    /// A subject with a role in a realm.
    DomainSubject {
        realm: String,
        role: String,
        explicit: bool,
    },
    /// Not configured; shown to connect configured identities.
    Intermediate,
}

#[derive(Debug, Clone, Serialize)]
pub struct TreeNode {
    pub identity: String,
    /// The identity relative to its parent (`agent1` under `…:alice`), or in full for roots.
    pub label: String,
    pub kind: NodeKind,
    pub permissions: Permissions,
    pub violations: Vec<Finding>,
    pub parent: Option<usize>,
    pub children: Vec<usize>,
    pub depth: usize,
}

impl TreeNode {
    pub fn has_errors(&self) -> bool {
        self.violations.iter().any(Finding::is_error)
    }
}

/// The forest, nodes in depth-first order.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DelegationTree {
    pub nodes: Vec<TreeNode>,
    pub roots: Vec<usize>,
    /// Identity → node, so lookups stay constant-time at 10,000 identities.
    #[serde(skip)]
    index: HashMap<String, usize>,
}

impl DelegationTree {
    /// Builds the forest; `findings` are attached to the nodes they are about.
    pub fn build(policy: &Policy, findings: &[Finding]) -> DelegationTree {
        let mut kinds: BTreeMap<String, (NodeKind, Permissions)> = BTreeMap::new();
        for client in &policy.clients {
            let kind = NodeKind::Client {
                identity_token_duration: client.identity_token_cap(),
                delegatable: client.delegatable,
                realm: client.domain.is_some(),
                operator: client.operator,
            };
            kinds
                .entry(client.identity.clone())
                .or_insert((kind, Permissions::from_resources(&client.resources)));
        }
        for realm in policy.realms() {
            let Some(domain) = &realm.domain else {
                continue;
            };
            for assignment in &domain.role_assignments {
                let permissions = domain
                    .role(&assignment.role)
                    .map(|r| Permissions::from_resources(&r.resources))
                    .unwrap_or_default();
                let kind = NodeKind::DomainSubject {
                    realm: realm.identity.clone(),
                    role: assignment.role.clone(),
                    explicit: true,
                };
                kinds
                    .entry(assignment.subject.clone())
                    .or_insert((kind, permissions));
            }
        }
        add_intermediates(&mut kinds);

        let mut violations: BTreeMap<&str, Vec<Finding>> = BTreeMap::new();
        for finding in findings {
            if let Some(subject) = &finding.subject {
                violations
                    .entry(subject.as_str())
                    .or_default()
                    .push(finding.clone());
            }
        }
        let mut tree = DelegationTree::default();
        // BTreeMap order puts every ancestor before its descendants (a prefix sorts first),
        // but `a:b` and `a-c` interleave, so parents are found by walking up, not by order.
        let identities: Vec<String> = kinds.keys().cloned().collect();
        let mut parent_of: BTreeMap<&str, &str> = BTreeMap::new();
        for identity in &identities {
            let parent = nearest_present(identity, &kinds)
                .and_then(|p| identities.binary_search_by(|i| i.as_str().cmp(p)).ok());
            if let Some(parent) = parent {
                parent_of.insert(identity, &identities[parent]);
            }
        }
        let mut children_of: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (child, parent) in &parent_of {
            children_of.entry(parent).or_default().push(child);
        }
        let roots: Vec<&String> = identities
            .iter()
            .filter(|i| !parent_of.contains_key(i.as_str()))
            .collect();
        let mut build = Build {
            children_of: &children_of,
            kinds: &mut kinds,
            violations: &mut violations,
        };
        for root in roots {
            tree.add_subtree(root, None, 0, &mut build);
        }
        tree.index = tree
            .nodes
            .iter()
            .enumerate()
            .map(|(i, node)| (node.identity.clone(), i))
            .collect();
        tree
    }

    fn add_subtree(
        &mut self,
        identity: &str,
        parent: Option<usize>,
        depth: usize,
        build: &mut Build<'_, '_>,
    ) {
        let (kind, permissions) = build
            .kinds
            .remove(identity)
            .unwrap_or((NodeKind::Intermediate, Permissions::default()));
        let label = match parent {
            Some(p) => identity
                .strip_prefix(&self.nodes[p].identity)
                .map(|rest| rest.trim_start_matches(':').to_string())
                .unwrap_or_else(|| identity.to_string()),
            None => identity.to_string(),
        };
        let index = self.nodes.len();
        self.nodes.push(TreeNode {
            identity: identity.to_string(),
            label,
            kind,
            permissions,
            violations: build.violations.remove(identity).unwrap_or_default(),
            parent,
            children: Vec::new(),
            depth,
        });
        match parent {
            Some(p) => self.nodes[p].children.push(index),
            None => self.roots.push(index),
        }
        let children = build.children_of.get(identity).cloned().unwrap_or_default();
        for child in children {
            self.add_subtree(child, Some(index), depth + 1, build);
        }
    }

    pub fn find(&self, identity: &str) -> Option<usize> {
        self.index.get(identity).copied()
    }

    /// Indices from the root down to `identity`.
    pub fn path_to(&self, identity: &str) -> Vec<usize> {
        let mut path = Vec::new();
        let mut current = self.find(identity);
        while let Some(index) = current {
            path.push(index);
            current = self.nodes[index].parent;
        }
        path.reverse();
        path
    }

    /// The tree as indented text, for the CLI.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for &root in &self.roots {
            self.render_node(root, "", true, true, &mut out);
        }
        out
    }

    fn render_node(&self, index: usize, indent: &str, last: bool, root: bool, out: &mut String) {
        let node = &self.nodes[index];
        let branch = if root {
            ""
        } else if last {
            "└─ "
        } else {
            "├─ "
        };
        out.push_str(&format!(
            "{indent}{branch}{}  {}\n",
            node.label,
            describe(node)
        ));
        let child_indent = if root {
            String::new()
        } else {
            format!("{indent}{}", if last { "   " } else { "│  " })
        };
        for finding in &node.violations {
            let (glyph, word) = match finding.severity {
                Severity::Error => ("✗", "error"),
                Severity::Warning => ("!", "warning"),
            };
            let at = finding
                .location
                .map(|l| format!(" (line {})", l.line))
                .unwrap_or_default();
            out.push_str(&format!(
                "{child_indent}   {glyph} {word}{at}: {}\n",
                finding.message
            ));
        }
        for (i, &child) in node.children.iter().enumerate() {
            self.render_node(
                child,
                &child_indent,
                i + 1 == node.children.len(),
                false,
                out,
            );
        }
    }
}

/// What building the tree consumes as it goes.
struct Build<'a, 'f> {
    children_of: &'a BTreeMap<&'a str, Vec<&'a str>>,
    kinds: &'a mut BTreeMap<String, (NodeKind, Permissions)>,
    violations: &'a mut BTreeMap<&'f str, Vec<Finding>>,
}

fn describe(node: &TreeNode) -> String {
    let mut parts = Vec::new();
    match &node.kind {
        NodeKind::Client {
            identity_token_duration,
            delegatable,
            realm,
            operator,
        } => {
            if *realm {
                parts.push("realm".to_string());
            }
            if *operator {
                parts.push("operator".to_string());
            }
            parts.push(node.permissions.to_string());
            parts.push(match identity_token_duration {
                Some(seconds) => {
                    format!("identity tokens {}", super::duration::format(*seconds))
                }
                None => "no identity tokens".to_string(),
            });
            if !delegatable {
                parts.push("not delegatable".to_string());
            }
        }
        NodeKind::DomainSubject { role, explicit, .. } => {
            parts.push(format!(
                "role {role}{}",
                if *explicit { "" } else { " (default)" }
            ));
            parts.push(node.permissions.to_string());
        }
        NodeKind::Intermediate => parts.push("(not configured)".to_string()),
    }
    parts.join(" · ")
}

/// Adds unconfigured identities between each identity and its nearest configured ancestor.
fn add_intermediates(kinds: &mut BTreeMap<String, (NodeKind, Permissions)>) {
    let mut missing = Vec::new();
    for identity in kinds.keys() {
        let Some(ancestor) = nearest_present(identity, kinds) else {
            continue;
        };
        let mut current = identity.as_str();
        while let Some((parent, _)) = current.rsplit_once(':') {
            if parent == ancestor {
                break;
            }
            missing.push(parent.to_string());
            current = parent;
        }
    }
    for identity in missing {
        kinds
            .entry(identity)
            .or_insert((NodeKind::Intermediate, Permissions::default()));
    }
}

fn nearest_present<'k, V>(identity: &str, kinds: &'k BTreeMap<String, V>) -> Option<&'k str> {
    let mut current = identity;
    while let Some((parent, _)) = current.rsplit_once(':') {
        if let Some((key, _)) = kinds.get_key_value(parent) {
            debug_assert!(is_strict_descendant(identity, key));
            return Some(key.as_str());
        }
        current = parent;
    }
    None
}
