//! Generated policies for benchmarks and performance tests: many clients in hierarchies six
//! deep, and many realms with many role assignments. Deterministic for a given size.

use std::fmt::Write;

/// Sizes of a generated policy.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Top-level organisations; each has a six-deep chain plus side branches.
    pub organisations: usize,
    pub realms: usize,
    pub assignments_per_realm: usize,
}

impl Shape {
    /// 10,000 clients (1,000 organisations × 10 identities, six deep), 100 realms × 100
    /// assignments.
    pub const LARGE: Shape = Shape {
        organisations: 990,
        realms: 100,
        assignments_per_realm: 100,
    };
}

/// Writes a valid, commented policy of the given shape.
pub fn policy(shape: Shape) -> String {
    let mut out = String::from("# Generated policy for benchmarks.\n");
    for org in 0..shape.organisations {
        let base = format!("uri:urn:org{org}");
        // A chain six deep (base + 5 levels) and four side branches: 10 identities.
        let mut chain = vec![base.clone()];
        for level in 1..6 {
            chain.push(format!("{}:l{level}", chain[level - 1]));
        }
        for (depth, identity) in chain.iter().enumerate() {
            client(&mut out, identity, 6 - depth as u64, depth == 0);
        }
        for side in 0..4 {
            client(
                &mut out,
                &format!("{}:side{side}", chain[1 + side % 4]),
                1,
                false,
            );
        }
    }
    for realm in 0..shape.realms {
        let identity = format!("uri:urn:realm{realm}");
        let _ = write!(
            out,
            "\n[[clients]]\nidentifier = {{ type = \"san_uri\", value = \"{identity}\" }}\nresources = [{{ name = \"api\", operations = [\"read\"] }}]\nidentity_token_enabled = true\n\n[clients.domain.default_role]\nname = \"member\"\nresources = [{{ name = \"api\", operations = [\"read\"] }}]\n\n[[clients.domain.roles]]\nname = \"admin\"\nresources = [{{ name = \"api\", operations = [\"read\", \"write\", \"delete\"] }}]\n"
        );
        for user in 0..shape.assignments_per_realm {
            let role = if user % 10 == 0 { "admin" } else { "member" };
            let _ = write!(
                out,
                "\n[[clients.domain.role_assignments]]\nsubject = \"{identity}:user{user}\"\nrole = \"{role}\"\n"
            );
        }
    }
    out
}

fn client(out: &mut String, identity: &str, weight: u64, top: bool) {
    let operations = if top {
        r#"["read", "write"]"#
    } else {
        r#"["read"]"#
    };
    let _ = write!(
        out,
        "\n# {identity}\n[[clients]]\nidentifier = {{ type = \"san_uri\", value = \"{identity}\" }}\nresources = [\n  {{ name = \"api\", operations = {operations} }},\n  {{ name = \"data\", operations = [\"read\"] }},\n]\nidentity_token_enabled = true\nidentity_token_duration = {}\n",
        weight * 600
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_policy_has_10000_valid_clients() {
        let text = policy(Shape::LARGE);
        let loaded = crate::policy::load(&text, 0).unwrap();
        assert_eq!(loaded.policy.clients.len(), 10_000);
        let errors: Vec<_> = loaded.errors().take(3).collect();
        assert!(errors.is_empty(), "{errors:?}");
        let tree = crate::policy::DelegationTree::build(&loaded.policy, &loaded.findings);
        let deepest = tree.nodes.iter().map(|n| n.depth).max().unwrap();
        assert_eq!(deepest, 5, "six levels: depths 0 to 5");
    }
}
