//! The deployment examples under `deploy/` (issue 17, item 6) against each other and against the
//! real program: every YAML and TOML file parses, the container's arguments parse with the real
//! CLI, and ports, volumes, Secret keys, routes, metric names and audit paths agree. Nothing here
//! talks to a cluster, HAProxy, Prometheus or Vector: see README, "Running a fleet".
//!
//! Each check has a test that breaks the files the way drift would (a port changed in one place,
//! a flag renamed, a Secret key missing) and expects the check to say so.

use std::collections::BTreeMap;
use std::path::Path;

use clap::Parser;
use hessra_console::cli::{Cli, Command};
use yaml_rust2::{Yaml, YamlLoader};

/// The files under `deploy/`, by path relative to it.
type Files = BTreeMap<String, String>;

const SERVER_CONTAINER: &str = "hessra";
const SHIPPER_CONTAINER: &str = "audit-shipper";
const HANDLERS: &str = "src/server/handlers.rs";
const METRICS: &str = "src/server/metrics.rs";

fn repo_file(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

fn deploy_files() -> Files {
    fn walk(dir: &Path, root: &Path, files: &mut Files) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(&path, root, files);
                continue;
            }
            let name = path.strip_prefix(root).expect("under deploy/");
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            files.insert(name.display().to_string(), text);
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy");
    let mut files = Files::new();
    walk(&root, &root, &mut files);
    files
}

/// The files, parsed.
struct Deploy {
    /// Every Kubernetes object under `kubernetes/`.
    objects: Vec<Yaml>,
    haproxy: String,
    prometheus: Yaml,
    rules: Yaml,
    vector: toml_edit::DocumentMut,
}

fn is_yaml(name: &str) -> bool {
    name.ends_with(".yaml") || name.ends_with(".yml")
}

fn parse(files: &Files) -> Result<Deploy, Vec<String>> {
    let mut problems = Vec::new();
    let mut yaml = BTreeMap::new();
    for (name, text) in files.iter().filter(|(name, _)| is_yaml(name)) {
        match YamlLoader::load_from_str(text) {
            Ok(docs) if docs.is_empty() => problems.push(format!("{name}: no YAML document")),
            Ok(docs) => {
                yaml.insert(name.clone(), docs);
            }
            Err(e) => problems.push(format!("{name} does not parse as YAML: {e}")),
        }
    }
    let mut vector = None;
    for (name, text) in files.iter().filter(|(name, _)| name.ends_with(".toml")) {
        match text.parse::<toml_edit::DocumentMut>() {
            Ok(doc) if name == "vector.toml" => vector = Some(doc),
            Ok(_) => {}
            Err(e) => problems.push(format!("{name} does not parse as TOML: {e}")),
        }
    }
    let mut take = |name: &str| match yaml.get(name) {
        Some(docs) => docs[0].clone(),
        None => {
            problems.push(format!("{name} is missing"));
            Yaml::BadValue
        }
    };
    let prometheus = take("prometheus.yml");
    let rules = take("prometheus-rules.yml");
    let haproxy = files.get("haproxy.cfg").cloned().unwrap_or_else(|| {
        problems.push("haproxy.cfg is missing".into());
        String::new()
    });
    if vector.is_none() && !problems.iter().any(|p| p.starts_with("vector.toml")) {
        problems.push("vector.toml is missing".into());
    }
    let objects: Vec<Yaml> = yaml
        .iter()
        .filter(|(name, _)| name.starts_with("kubernetes/"))
        .flat_map(|(_, docs)| docs.iter().cloned())
        .collect();
    for object in &objects {
        if object["kind"].as_str().is_none() || object["metadata"]["name"].as_str().is_none() {
            problems.push(format!(
                "a Kubernetes document without kind or name: {object:?}"
            ));
        }
    }
    match (problems.is_empty(), vector) {
        (true, Some(vector)) => Ok(Deploy {
            objects,
            haproxy,
            prometheus,
            rules,
            vector,
        }),
        _ => Err(problems),
    }
}

impl Deploy {
    fn objects_of(&self, kind: &str) -> impl Iterator<Item = &Yaml> {
        self.objects
            .iter()
            .filter(move |o| o["kind"].as_str() == Some(kind))
    }

    fn object(&self, kind: &str, name: &str) -> Option<&Yaml> {
        self.objects_of(kind)
            .find(|o| o["metadata"]["name"].as_str() == Some(name))
    }

    fn deployment(&self) -> &Yaml {
        self.objects_of("Deployment")
            .next()
            .expect("checked by check_deployment_exists")
    }

    fn pod(&self) -> &Yaml {
        &self.deployment()["spec"]["template"]["spec"]
    }

    fn container(&self, name: &str) -> &Yaml {
        list(&self.pod()["containers"])
            .iter()
            .find(|c| c["name"].as_str() == Some(name))
            .unwrap_or(&Yaml::BadValue)
    }

    fn server_args(&self) -> Vec<String> {
        list(&self.container(SERVER_CONTAINER)["args"])
            .iter()
            .filter_map(|a| a.as_str().map(str::to_string))
            .collect()
    }

    /// The value of `--flag` in the server's arguments (`--flag=value` or `--flag value`).
    fn flag(&self, flag: &str) -> Option<String> {
        flag_value(&self.server_args(), flag)
    }

    /// The server container's port named `https`.
    fn container_port(&self) -> Option<i64> {
        list(&self.container(SERVER_CONTAINER)["ports"])
            .iter()
            .find(|p| p["name"].as_str() == Some("https"))
            .and_then(|p| p["containerPort"].as_i64())
    }

    /// A port as a Service or a probe names it (a number, or a name of the server's ports).
    fn resolve_port(&self, port: &Yaml) -> Option<i64> {
        if let Some(number) = port.as_i64() {
            return Some(number);
        }
        let name = port.as_str()?;
        list(&self.container(SERVER_CONTAINER)["ports"])
            .iter()
            .find(|p| p["name"].as_str() == Some(name))
            .and_then(|p| p["containerPort"].as_i64())
    }

    fn volume(&self, name: &str) -> Option<&Yaml> {
        list(&self.pod()["volumes"])
            .iter()
            .find(|v| v["name"].as_str() == Some(name))
    }

    fn all_containers(&self) -> Vec<&Yaml> {
        let pod = self.pod();
        list(&pod["initContainers"])
            .iter()
            .chain(list(&pod["containers"]))
            .collect()
    }

    /// The mount of `container` that holds `path`: the longest mount path above it.
    fn mount_holding<'a>(&self, container: &'a Yaml, path: &str) -> Option<&'a Yaml> {
        list(&container["volumeMounts"])
            .iter()
            .filter(|m| m["mountPath"].as_str().is_some_and(|dir| under(path, dir)))
            .max_by_key(|m| m["mountPath"].as_str().map_or(0, str::len))
    }

    /// The keys of the Secrets whose files end up in the server's volume `volume`: the Secret
    /// itself, or, for an emptyDir that an init container fills, the Secrets mounted into it.
    fn secret_keys_behind(&self, volume: &str) -> Vec<(String, String)> {
        let Some(spec) = self.volume(volume) else {
            return Vec::new();
        };
        if let Some(secret) = spec["secret"]["secretName"].as_str() {
            return self.secret_keys(secret);
        }
        let mut keys = Vec::new();
        for init in list(&self.pod()["initContainers"]) {
            let mounts = list(&init["volumeMounts"]);
            if !mounts.iter().any(|m| m["name"].as_str() == Some(volume)) {
                continue;
            }
            for mount in mounts {
                let source = mount["name"].as_str().and_then(|n| self.volume(n));
                if let Some(secret) = source.and_then(|s| s["secret"]["secretName"].as_str()) {
                    keys.extend(self.secret_keys(secret));
                }
            }
        }
        keys
    }

    /// `(key, value)` of a Secret's stringData (or data).
    fn secret_keys(&self, name: &str) -> Vec<(String, String)> {
        let Some(secret) = self.object("Secret", name) else {
            return Vec::new();
        };
        ["stringData", "data"]
            .iter()
            .filter_map(|field| secret[*field].as_hash())
            .flat_map(|hash| hash.iter())
            .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.as_str()?.to_string())))
            .collect()
    }
}

fn list(yaml: &Yaml) -> &[Yaml] {
    yaml.as_vec().map_or(&[], Vec::as_slice)
}

fn flag_value(args: &[String], flag: &str) -> Option<String> {
    for (i, arg) in args.iter().enumerate() {
        if let Some(value) = arg.strip_prefix(flag).and_then(|r| r.strip_prefix('=')) {
            return Some(value.to_string());
        }
        if arg == flag {
            return args.get(i + 1).cloned();
        }
    }
    None
}

/// Whether `path` is `dir` or inside it.
fn under(path: &str, dir: &str) -> bool {
    let dir = dir.trim_end_matches('/');
    path == dir
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
}

fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// A shell-style match where `*` stands for any run of characters (what Vector's globs use here).
fn glob_matches(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, tail)) => {
            let Some(rest) = text.strip_prefix(head) else {
                return false;
            };
            (0..=rest.len())
                .filter(|i| rest.is_char_boundary(*i))
                .any(|i| glob_matches(tail, &rest[i..]))
        }
    }
}

/// The server's routes: `(path, handler body)` for the GET routes `handlers.rs` defines, the
/// body empty when the handler lives elsewhere.
fn get_routes() -> Vec<(String, String)> {
    let source = repo_file(HANDLERS);
    let mut routes = Vec::new();
    let mut rest = source.as_str();
    while let Some(at) = rest.find(".route(") {
        rest = &rest[at + ".route(".len()..];
        let call: String = rest
            .chars()
            .take_while(|c| *c != ')')
            .filter(|c| !c.is_whitespace())
            .collect();
        let Some((path, handler)) = call.split_once(",get(") else {
            continue;
        };
        let path = path.trim_matches('"').to_string();
        let body = source
            .find(&format!("async fn {handler}("))
            .map(|start| {
                let end = source[start..]
                    .find("\n}\n")
                    .map_or(source.len(), |e| start + e);
                source[start..end].to_string()
            })
            .unwrap_or_default();
        routes.push((path, body));
    }
    routes
}

/// Why a probe or a health check on `path` would fail, if it would: no such GET route, or one
/// that wants a client certificate (which kubelet and HAProxy checks do not present).
fn anonymous_get_route(path: &str, routes: &[(String, String)]) -> Result<(), String> {
    let Some((_, body)) = routes.iter().find(|(p, _)| p == path) else {
        return Err(format!(
            "{path} is not a GET route of the server ({HANDLERS})"
        ));
    };
    if body.is_empty() {
        return Err(format!(
            "{path}: its handler is not in {HANDLERS}, so this test cannot tell who may call it"
        ));
    }
    if body.contains("operator(") || body.contains("PeerCertificate") {
        return Err(format!(
            "{path} needs an operator's client certificate, which a health check cannot present"
        ));
    }
    Ok(())
}

fn needs_operator(path: &str, routes: &[(String, String)]) -> bool {
    routes
        .iter()
        .any(|(p, body)| p == path && body.contains("operator("))
}

// ---- the checks: each returns what is wrong, in words an operator can act on ----

fn check_deployment_exists(deploy: &Deploy) -> Vec<String> {
    let count = deploy.objects_of("Deployment").count();
    if count != 1 {
        return vec![format!(
            "expected one Deployment under kubernetes/, found {count}"
        )];
    }
    if deploy.container(SERVER_CONTAINER).is_badvalue() {
        return vec![format!(
            "the Deployment has no container named {SERVER_CONTAINER}"
        )];
    }
    Vec::new()
}

/// The arguments are a `serve` command the real CLI accepts, with every piece a replica needs.
fn check_serve_args(deploy: &Deploy) -> Vec<String> {
    let args = deploy.server_args();
    let argv = std::iter::once("hessra-console".to_string()).chain(args.iter().cloned());
    let mut problems = match Cli::try_parse_from(argv) {
        Ok(Cli {
            command: Some(Command::Serve(_)),
            ..
        }) => Vec::new(),
        Ok(_) => vec![format!(
            "the container's args are not a serve command: {args:?}"
        )],
        Err(e) => vec![format!(
            "the container's args are not accepted by `hessra-console serve`: {}",
            e.render()
        )],
    };
    for flag in [
        "--policy-repo",
        "--state-dir",
        "--listen",
        "--tls-cert",
        "--tls-key",
        "--key-dir",
        "--audit-file",
    ] {
        if deploy.flag(flag).is_none() {
            problems.push(format!(
                "the container's args lack {flag}, which every replica needs"
            ));
        }
    }
    problems
}

/// One port from `--listen` through the container, the probes and both Services.
fn check_ports(deploy: &Deploy) -> Vec<String> {
    let mut problems = Vec::new();
    let listen = deploy
        .flag("--listen")
        .and_then(|l| l.rsplit_once(':').and_then(|(_, p)| p.parse::<i64>().ok()));
    let port = deploy.container_port();
    if listen.is_none() || listen != port {
        problems.push(format!(
            "--listen's port {listen:?} is not the container port named https {port:?}"
        ));
    }
    let server = deploy.container(SERVER_CONTAINER);
    for probe in ["startupProbe", "readinessProbe", "livenessProbe"] {
        let target = &server[probe]["httpGet"]["port"];
        if server[probe].is_badvalue() {
            problems.push(format!("the server has no {probe}"));
        } else if deploy.resolve_port(target) != port {
            problems.push(format!("{probe} checks port {target:?}, not {port:?}"));
        }
    }
    for service in deploy.objects_of("Service") {
        let name = service["metadata"]["name"].as_str().unwrap_or("?");
        for entry in list(&service["spec"]["ports"]) {
            let target = &entry["targetPort"];
            if deploy.resolve_port(target) != port {
                problems.push(format!(
                    "Service {name}: targetPort {target:?} is not the server's port {port:?}"
                ));
            }
        }
    }
    problems
}

/// The probes ask something that exists and answers without a client certificate.
fn check_probes(deploy: &Deploy) -> Vec<String> {
    let routes = get_routes();
    let server = deploy.container(SERVER_CONTAINER);
    let mut problems = Vec::new();
    for probe in ["startupProbe", "readinessProbe", "livenessProbe"] {
        let get = &server[probe]["httpGet"];
        if get["scheme"].as_str() != Some("HTTPS") {
            problems.push(format!(
                "{probe} must use scheme HTTPS: the server speaks only TLS"
            ));
        }
        let path = get["path"].as_str().unwrap_or("(none)");
        if let Err(e) = anonymous_get_route(path, &routes) {
            problems.push(format!("{probe}: {e}"));
        }
    }
    problems
}

/// Labels: both selectors and every Service's pick the pod template.
fn check_selectors(deploy: &Deploy) -> Vec<String> {
    let labels = deploy.deployment()["spec"]["template"]["metadata"]["labels"].clone();
    let picks = |selector: &Yaml| {
        selector.as_hash().is_some_and(|wanted| {
            !wanted.is_empty()
                && wanted
                    .iter()
                    .all(|(k, v)| labels[k.as_str().unwrap_or("")] == *v)
        })
    };
    let mut problems = Vec::new();
    if !picks(&deploy.deployment()["spec"]["selector"]["matchLabels"]) {
        problems.push("the Deployment's selector does not pick its own pods".to_string());
    }
    for service in deploy.objects_of("Service") {
        if !picks(&service["spec"]["selector"]) {
            problems.push(format!(
                "Service {} selects no pod of the Deployment",
                service["metadata"]["name"].as_str().unwrap_or("?")
            ));
        }
    }
    problems
}

/// Every mount has a volume; every path the server is given is on a mount; what it writes is on
/// a writable one (the root filesystem is read-only); the key set is on a read-only one, so one
/// replica cannot rotate keys alone.
fn check_volumes(deploy: &Deploy) -> Vec<String> {
    let mut problems = Vec::new();
    for container in deploy.all_containers() {
        let name = container["name"].as_str().unwrap_or("?");
        for mount in list(&container["volumeMounts"]) {
            let volume = mount["name"].as_str().unwrap_or("?");
            if deploy.volume(volume).is_none() {
                problems.push(format!(
                    "container {name} mounts {volume}, which is no volume of the pod"
                ));
            }
        }
    }
    let server = deploy.container(SERVER_CONTAINER);
    let audit_file = deploy.flag("--audit-file").unwrap_or_default();
    let writes = [
        (
            "--state-dir",
            deploy.flag("--state-dir").unwrap_or_default(),
        ),
        ("--audit-file", parent(&audit_file).to_string()),
    ];
    for (flag, dir) in writes {
        match deploy.mount_holding(server, &dir) {
            Some(mount) if mount["readOnly"].as_bool() != Some(true) => {}
            _ => problems.push(format!(
                "{flag} ({dir}) is not on a writable volume of the server (its root filesystem is read-only)"
            )),
        }
    }
    for flag in ["--tls-cert", "--tls-key", "--client-ca", "--key-dir"] {
        let Some(path) = deploy.flag(flag) else {
            continue;
        };
        match deploy.mount_holding(server, &path) {
            None => problems.push(format!("{flag} ({path}) is on no volume of the server")),
            Some(mount) if flag == "--key-dir" && mount["readOnly"].as_bool() != Some(true) => {
                problems.push(format!(
                    "--key-dir ({path}) is writable: one replica could rotate its keys alone"
                ))
            }
            Some(_) => {}
        }
    }
    problems
}

/// The files the server is given come from the Secret, and its key directory holds root keys; every
/// Secret the pod mounts exists; the template holds placeholders only.
fn check_secrets(deploy: &Deploy) -> Vec<String> {
    let mut problems = Vec::new();
    let server = deploy.container(SERVER_CONTAINER);
    if let Some(dir) = deploy.flag("--key-dir") {
        problems.extend(check_key_dir(deploy, &dir));
    }
    for flag in ["--tls-cert", "--tls-key", "--client-ca"] {
        let Some(path) = deploy.flag(flag) else {
            continue;
        };
        let Some(mount) = deploy.mount_holding(server, &path) else {
            continue;
        };
        let dir = mount["mountPath"].as_str().unwrap_or("");
        let file = path[dir.len()..].trim_start_matches('/');
        let keys = deploy.secret_keys_behind(mount["name"].as_str().unwrap_or(""));
        if !keys.iter().any(|(k, _)| k == file) {
            problems.push(format!(
                "{flag} names {file}, which no Secret of the pod holds"
            ));
        }
    }
    for volume in list(&deploy.pod()["volumes"]) {
        if let Some(secret) = volume["secret"]["secretName"].as_str()
            && deploy.object("Secret", secret).is_none()
        {
            problems.push(format!(
                "volume {:?} mounts Secret {secret}, which kubernetes/ does not define",
                volume["name"].as_str().unwrap_or("?")
            ));
        }
    }
    for secret in deploy.objects_of("Secret") {
        let name = secret["metadata"]["name"].as_str().unwrap_or("?");
        if !secret["data"].is_badvalue() {
            problems.push(format!(
                "Secret {name} has data: the template carries placeholders in stringData only"
            ));
        }
        for (key, value) in deploy.secret_keys(name) {
            if !value.contains("REPLACE") {
                problems.push(format!("Secret {name}: {key} is not a placeholder (no REPLACE in it); never commit real keys"));
            }
        }
    }
    problems.extend(check_ssh_remote(deploy));
    problems
}

/// The key directory holds at least one root private key from the Secret (besides the TLS
/// key): the files a replica finds its keys among, by public key. keys.toml is not there: it
/// comes from the repository.
fn check_key_dir(deploy: &Deploy, dir: &str) -> Vec<String> {
    let server = deploy.container(SERVER_CONTAINER);
    let Some(mount) = deploy.mount_holding(server, dir) else {
        return Vec::new();
    };
    let keys = deploy.secret_keys_behind(mount["name"].as_str().unwrap_or(""));
    let tls_key = deploy
        .flag("--tls-key")
        .map(|p| p.rsplit('/').next().unwrap_or("").to_string());
    let mut problems = Vec::new();
    if !keys.iter().any(|(name, value)| {
        name.ends_with(".key")
            && Some(name) != tls_key.as_ref()
            && value.contains("BEGIN PRIVATE KEY")
    }) {
        problems.push(format!(
            "--key-dir ({dir}) holds no root private key: the Secret behind it has no NAME.key besides the TLS key"
        ));
    }
    if keys.iter().any(|(name, _)| name == "keys.toml") {
        problems.push(format!(
            "the Secret behind --key-dir ({dir}) holds a keys.toml: with --key-dir the key set comes from the repository, and a second copy drifts"
        ));
    }
    problems
}

/// An ssh remote needs a deploy key and known_hosts in the server's ~/.ssh.
fn check_ssh_remote(deploy: &Deploy) -> Vec<String> {
    let remote = deploy.flag("--policy-repo").unwrap_or_default();
    if !(remote.starts_with("ssh://") || remote.starts_with("git@")) {
        return Vec::new();
    }
    let server = deploy.container(SERVER_CONTAINER);
    let home = list(&server["env"])
        .iter()
        .find(|e| e["name"].as_str() == Some("HOME"))
        .and_then(|e| e["value"].as_str());
    let Some(home) = home else {
        return vec![
            "an ssh remote needs HOME set: ~/.ssh is where the deploy key is looked for".into(),
        ];
    };
    let ssh = format!("{home}/.ssh/known_hosts");
    let Some(mount) = deploy.mount_holding(server, &ssh) else {
        return vec![format!(
            "an ssh remote needs {home}/.ssh mounted (deploy key, known_hosts)"
        )];
    };
    let keys = deploy.secret_keys_behind(mount["name"].as_str().unwrap_or(""));
    let has = |name: &str| keys.iter().any(|(k, _)| k == name);
    let mut problems = Vec::new();
    if !has("known_hosts") {
        problems.push("~/.ssh has no known_hosts: an unknown host key is refused".to_string());
    }
    if !["id_ed25519", "id_ecdsa", "id_rsa"].iter().any(|k| has(k)) {
        problems.push("~/.ssh has no id_ed25519, id_ecdsa or id_rsa deploy key".to_string());
    }
    problems
}

fn check_security_context(deploy: &Deploy) -> Vec<String> {
    let mut problems = Vec::new();
    let pod = &deploy.pod()["securityContext"];
    if pod["runAsNonRoot"].as_bool() != Some(true) || pod["runAsUser"].as_i64().unwrap_or(0) == 0 {
        problems.push("the pod must run as a non-root user (runAsNonRoot, runAsUser)".to_string());
    }
    for container in deploy.all_containers() {
        let name = container["name"].as_str().unwrap_or("?");
        let context = &container["securityContext"];
        if context["readOnlyRootFilesystem"].as_bool() != Some(true) {
            problems.push(format!(
                "container {name}: readOnlyRootFilesystem must be true"
            ));
        }
        if context["allowPrivilegeEscalation"].as_bool() != Some(false) {
            problems.push(format!(
                "container {name}: allowPrivilegeEscalation must be false"
            ));
        }
    }
    problems
}

/// HAProxy passes TLS through to the replicas of the headless Service, on its port, with room
/// for every replica, and checks them on a route that answers without a certificate.
fn check_haproxy(deploy: &Deploy) -> Vec<String> {
    let mut problems = Vec::new();
    let lines: Vec<&str> = deploy
        .haproxy
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .collect();
    if !lines.contains(&"mode tcp") || lines.iter().any(|l| l.starts_with("mode http")) {
        problems.push("haproxy.cfg must pass TLS through (mode tcp): clients authenticate with certificates in the server's handshake".into());
    }
    for line in &lines {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words[0] == "bind" && words.contains(&"ssl") {
            problems.push(format!(
                "haproxy.cfg terminates TLS ({line}); the server must see the client's handshake"
            ));
        }
        if words.iter().any(|w| w.starts_with("send-proxy")) {
            problems.push(format!(
                "haproxy.cfg sends the PROXY protocol ({line}), which the server does not read"
            ));
        }
    }
    let servers: Vec<Vec<&str>> = lines
        .iter()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|w| w[0] == "server-template" || w[0] == "server")
        .collect();
    if servers.is_empty() {
        problems.push("haproxy.cfg has no server or server-template line".into());
    }
    let replicas = deploy.deployment()["spec"]["replicas"]
        .as_i64()
        .unwrap_or(1);
    for words in &servers {
        let (slots, address) = match words[0] {
            "server-template" => (
                slot_count(words.get(2).copied().unwrap_or("")),
                words.get(3),
            ),
            _ => (1, words.get(2)),
        };
        let address = address.copied().unwrap_or("");
        let (host, port) = address.rsplit_once(':').unwrap_or((address, ""));
        problems.extend(check_haproxy_target(deploy, host, port));
        if words[0] == "server-template" && slots < replicas {
            problems.push(format!(
                "haproxy.cfg has {slots} slots for the Deployment's {replicas} replicas"
            ));
        }
    }
    let routes = get_routes();
    let check = lines
        .iter()
        .find(|l| l.starts_with("http-check send"))
        .and_then(|l| l.split_whitespace().skip_while(|w| *w != "uri").nth(1));
    match check {
        None => problems.push("haproxy.cfg has no http-check send … uri PATH: a replica that accepts TCP but cannot answer stays in".into()),
        Some(path) => {
            if let Err(e) = anonymous_get_route(path, &routes) {
                problems.push(format!("haproxy.cfg health check: {e}"));
            }
        }
    }
    problems
}

fn slot_count(range: &str) -> i64 {
    match range.split_once('-') {
        Some((from, to)) => to.parse::<i64>().unwrap_or(0) - from.parse::<i64>().unwrap_or(0) + 1,
        None => range.parse().unwrap_or(0),
    }
}

/// A backend `host:port` names a headless Service of the manifests (`name.namespace.svc…`) and
/// its port.
fn check_haproxy_target(deploy: &Deploy, host: &str, port: &str) -> Vec<String> {
    let mut labels = host.split('.');
    let (name, namespace) = (labels.next().unwrap_or(""), labels.next().unwrap_or(""));
    let service = deploy.objects_of("Service").find(|s| {
        s["metadata"]["name"].as_str() == Some(name)
            && s["metadata"]["namespace"].as_str() == Some(namespace)
    });
    let Some(service) = service else {
        return vec![format!(
            "haproxy.cfg balances over {host}, which is no Service of kubernetes/"
        )];
    };
    let mut problems = Vec::new();
    if service["spec"]["clusterIP"].as_str() != Some("None") {
        problems.push(format!("haproxy.cfg balances over {host}: that Service is not headless, so HAProxy would see one address, not the replicas"));
    }
    let ports: Vec<i64> = list(&service["spec"]["ports"])
        .iter()
        .filter_map(|p| p["port"].as_i64())
        .collect();
    if !ports.iter().any(|p| p.to_string() == port) {
        problems.push(format!(
            "haproxy.cfg sends to port {port:?}, but Service {name} listens on {ports:?}"
        ));
    }
    problems
}

/// Prometheus scrapes /metrics on every replica over TLS, with the client certificate the route
/// asks for, on the server's port; its rule files exist and name metrics the server exports.
fn check_prometheus(deploy: &Deploy, files: &Files) -> Vec<String> {
    let mut problems = Vec::new();
    let jobs = list(&deploy.prometheus["scrape_configs"]);
    let Some(job) = jobs
        .iter()
        .find(|j| j["job_name"].as_str() == Some("hessra"))
    else {
        return vec!["prometheus.yml has no job named hessra".into()];
    };
    let path = job["metrics_path"].as_str().unwrap_or("/metrics");
    let routes = get_routes();
    if !routes.iter().any(|(p, _)| p == path) {
        problems.push(format!(
            "prometheus.yml scrapes {path}, which is not a GET route of the server"
        ));
    }
    if job["scheme"].as_str() != Some("https") {
        problems.push(
            "prometheus.yml must scrape with scheme https: the server speaks only TLS".into(),
        );
    }
    let tls = &job["tls_config"];
    if needs_operator(path, &routes)
        && (tls["cert_file"].as_str().is_none() || tls["key_file"].as_str().is_none())
    {
        problems.push(format!("{path} answers only an operator's client certificate: prometheus.yml needs tls_config cert_file and key_file"));
    }
    let port = deploy.container_port().map(|p| p.to_string());
    let keeps_port = list(&job["relabel_configs"]).iter().any(|r| {
        r["action"].as_str() == Some("keep")
            && list(&r["source_labels"])
                .iter()
                .any(|l| l.as_str() == Some("__meta_kubernetes_pod_container_port_number"))
            && r["regex"].as_str().map(str::to_string) == port
    });
    if !keeps_port {
        problems.push(format!("prometheus.yml does not keep the server's port {port:?} (relabel on __meta_kubernetes_pod_container_port_number)"));
    }
    for file in list(&deploy.prometheus["rule_files"]) {
        let name = file.as_str().unwrap_or("");
        if !files.contains_key(name) {
            problems.push(format!(
                "prometheus.yml loads rule file {name}, which deploy/ does not have"
            ));
        }
    }
    problems.extend(check_rule_metrics(deploy));
    problems
}

fn check_rule_metrics(deploy: &Deploy) -> Vec<String> {
    let exported = repo_file(METRICS);
    let mut problems = Vec::new();
    for group in list(&deploy.rules["groups"]) {
        for rule in list(&group["rules"]) {
            let expr = rule["expr"].as_str().unwrap_or("");
            for name in metric_names(expr) {
                let base = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|suffix| name.strip_suffix(suffix))
                    .unwrap_or(&name);
                if !exported.contains(&format!("\"{base}\"")) {
                    problems.push(format!(
                        "alert {}: {name} is not a metric the server exports ({METRICS})",
                        rule["alert"].as_str().unwrap_or("?")
                    ));
                }
            }
        }
    }
    problems
}

fn metric_names(expr: &str) -> Vec<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("hessra_"))
        .map(str::to_string)
        .collect()
}

/// Vector reads the files the server writes (rotated ones too, not the checkpoint), from the
/// volume it shares with the server; its configuration and data are where the pod puts them;
/// the environment its program reads is set; every input is defined.
fn check_vector(deploy: &Deploy) -> Vec<String> {
    let mut problems = Vec::new();
    let vector = &deploy.vector;
    let audit_file = deploy.flag("--audit-file").unwrap_or_default();
    let source = vector
        .get("sources")
        .and_then(|s| s.as_table_like())
        .and_then(|s| {
            s.iter()
                .find(|(_, t)| t.get("type").and_then(|t| t.as_str()) == Some("file"))
        });
    let Some((_, source)) = source else {
        return vec!["vector.toml has no file source".into()];
    };
    let patterns = |key: &str| -> Vec<String> {
        source
            .get(key)
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|p| p.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (include, exclude) = (patterns("include"), patterns("exclude"));
    let read = |file: &str| {
        include.iter().any(|p| glob_matches(p, file))
            && !exclude.iter().any(|p| glob_matches(p, file))
    };
    for file in [
        audit_file.clone(),
        format!("{audit_file}.1"),
        format!("{audit_file}.12"),
    ] {
        if !read(&file) {
            problems.push(format!(
                "vector.toml does not read {file} (--audit-file and its rotated files)"
            ));
        }
    }
    let head = format!("{audit_file}.head");
    if read(&head) {
        problems.push(format!(
            "vector.toml reads {head}, the signed checkpoint (rewritten in place, not JSON lines)"
        ));
    }
    let shipper = deploy.container(SHIPPER_CONTAINER);
    let server = deploy.container(SERVER_CONTAINER);
    let audit_dir = parent(&audit_file);
    let volume_at = |container: &Yaml, path: &str| {
        deploy.mount_holding(container, path).map(|m| {
            (
                m["name"].as_str().map(str::to_string),
                m["mountPath"].as_str().map(str::to_string),
            )
        })
    };
    if volume_at(server, audit_dir).is_none()
        || volume_at(server, audit_dir) != volume_at(shipper, audit_dir)
    {
        problems.push(format!(
            "container {SHIPPER_CONTAINER} does not see {audit_dir} from the server's volume at the same path"
        ));
    }
    let shipper_args: Vec<String> = list(&shipper["args"])
        .iter()
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect();
    let config = flag_value(&shipper_args, "--config").unwrap_or_default();
    let config_mount = deploy.mount_holding(shipper, &config);
    let from_config_map = config_mount
        .and_then(|m| deploy.volume(m["name"].as_str().unwrap_or("")))
        .is_some_and(|v| !v["configMap"].is_badvalue());
    if !from_config_map || !config.ends_with("/vector.toml") {
        problems.push(format!("{SHIPPER_CONTAINER} reads --config {config:?}, which is not vector.toml from a ConfigMap volume"));
    }
    let data_dir = vector
        .get("data_dir")
        .and_then(|d| d.as_str())
        .unwrap_or("");
    match deploy.mount_holding(shipper, data_dir) {
        Some(mount) if mount["readOnly"].as_bool() != Some(true) => {}
        _ => problems.push(format!(
            "vector.toml's data_dir {data_dir:?} is not on a writable volume of {SHIPPER_CONTAINER}"
        )),
    }
    problems.extend(check_vector_env(vector, shipper));
    problems.extend(check_vector_inputs(vector));
    problems
}

fn check_vector_env(vector: &toml_edit::DocumentMut, shipper: &Yaml) -> Vec<String> {
    let text = vector.to_string();
    let set: Vec<&str> = list(&shipper["env"])
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    text.split("get_env_var(\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|name| !set.contains(name))
        .map(|name| {
            format!("vector.toml reads ${name}, which {SHIPPER_CONTAINER}'s env does not set")
        })
        .collect()
}

fn check_vector_inputs(vector: &toml_edit::DocumentMut) -> Vec<String> {
    let names = |section: &str| -> Vec<String> {
        vector
            .get(section)
            .and_then(|s| s.as_table_like())
            .map(|t| t.iter().map(|(k, _)| k.to_string()).collect())
            .unwrap_or_default()
    };
    let defined: Vec<String> = names("sources")
        .into_iter()
        .chain(names("transforms"))
        .collect();
    let mut problems = Vec::new();
    for section in ["transforms", "sinks"] {
        let Some(table) = vector.get(section).and_then(|s| s.as_table_like()) else {
            continue;
        };
        for (name, component) in table.iter() {
            let inputs = component.get("inputs").and_then(|i| i.as_array());
            for input in inputs.into_iter().flatten().filter_map(|i| i.as_str()) {
                if !defined.iter().any(|d| d == input) {
                    problems.push(format!(
                        "vector.toml: {section}.{name} reads {input}, which is not defined"
                    ));
                }
            }
        }
    }
    if names("sinks").is_empty() {
        problems.push("vector.toml has no sink: the audit goes nowhere".into());
    }
    problems
}

/// `template` without its volumes named in `names`.
fn without_volumes(template: &Yaml, names: &[String]) -> Yaml {
    let mut template = template.clone();
    if let Yaml::Hash(t) = &mut template
        && let Some(Yaml::Hash(spec)) = t.get_mut(&Yaml::String("spec".into()))
        && let Some(Yaml::Array(volumes)) = spec.get_mut(&Yaml::String("volumes".into()))
    {
        volumes.retain(|v| {
            !v["name"]
                .as_str()
                .is_some_and(|n| names.iter().any(|c| c == n))
        });
    }
    template
}

/// The StatefulSet variant runs the Deployment's pods (the same template, state and audit as
/// claims instead of emptyDirs), behind the headless Service, and `fleet.toml` names exactly its
/// replicas at their stable addresses — what `fleet status` and `push --wait` reach.
fn check_statefulset(deploy: &Deploy, files: &Files) -> Vec<String> {
    let sets: Vec<&Yaml> = deploy.objects_of("StatefulSet").collect();
    let [set] = sets.as_slice() else {
        return vec![format!(
            "expected one StatefulSet under kubernetes/statefulset/, found {}",
            sets.len()
        )];
    };
    let mut problems = Vec::new();
    let claims: Vec<String> = list(&set["spec"]["volumeClaimTemplates"])
        .iter()
        .filter_map(|c| c["metadata"]["name"].as_str().map(str::to_string))
        .collect();
    for claim in &claims {
        if deploy
            .volume(claim)
            .is_none_or(|volume| volume["emptyDir"].is_badvalue())
        {
            problems.push(format!(
                "the StatefulSet's claim {claim} does not replace an emptyDir volume of the Deployment"
            ));
        }
    }
    let ours = without_volumes(&set["spec"]["template"], &claims);
    let theirs = without_volumes(&deploy.deployment()["spec"]["template"], &claims);
    if ours != theirs {
        problems.push(
            "the StatefulSet's pod template differs from the Deployment's (beyond its claims): change both the same way"
                .to_string(),
        );
    }
    if set["spec"]["selector"] != deploy.deployment()["spec"]["selector"] {
        problems.push("the StatefulSet's selector is not the Deployment's".to_string());
    }
    let service_name = set["spec"]["serviceName"].as_str().unwrap_or("");
    let service = deploy.object("Service", service_name);
    if service.is_none_or(|s| s["spec"]["clusterIP"].as_str() != Some("None")) {
        problems.push(format!(
            "the StatefulSet's serviceName {service_name:?} is not a headless Service: its replicas get no stable names"
        ));
    }
    let port = service
        .and_then(|s| list(&s["spec"]["ports"]).first())
        .and_then(|p| p["port"].as_i64());
    let name = set["metadata"]["name"].as_str().unwrap_or("?");
    let namespace = set["metadata"]["namespace"].as_str().unwrap_or("default");
    let expected: Vec<(String, String)> = (0..set["spec"]["replicas"].as_i64().unwrap_or(1))
        .map(|i| {
            (
                format!("{name}-{i}"),
                format!(
                    "https://{name}-{i}.{service_name}.{namespace}.svc.cluster.local:{}",
                    port.unwrap_or(0)
                ),
            )
        })
        .collect();
    match files
        .get("fleet.toml")
        .map(|text| hessra_console::fleet::parse(text))
    {
        None => problems.push("fleet.toml is missing (the StatefulSet's replicas)".to_string()),
        Some(Err(e)) => problems.push(format!("fleet.toml: {e}")),
        Some(Ok(replicas)) => {
            let listed: Vec<(String, String)> =
                replicas.into_iter().map(|r| (r.name, r.url)).collect();
            if listed != expected {
                problems.push(format!(
                    "fleet.toml lists {listed:?}, but the StatefulSet runs {expected:?}"
                ));
            }
        }
    }
    problems
}

/// Everything wrong with the deploy files, in words an operator can act on.
fn problems(files: &Files) -> Vec<String> {
    let deploy = match parse(files) {
        Ok(deploy) => deploy,
        Err(problems) => return problems,
    };
    let exists = check_deployment_exists(&deploy);
    if !exists.is_empty() {
        return exists;
    }
    [
        check_serve_args(&deploy),
        check_ports(&deploy),
        check_probes(&deploy),
        check_selectors(&deploy),
        check_volumes(&deploy),
        check_secrets(&deploy),
        check_security_context(&deploy),
        check_haproxy(&deploy),
        check_prometheus(&deploy, files),
        check_vector(&deploy),
        check_statefulset(&deploy, files),
    ]
    .concat()
}

/// The deploy files with the first `from` after `anchor` in `file` replaced by `to` (`anchor`
/// must occur once and `from` after it, so a test never passes by changing nothing).
fn broken_after(file: &str, anchor: &str, from: &str, to: &str) -> Files {
    let mut files = deploy_files();
    let text = files
        .get_mut(file)
        .unwrap_or_else(|| panic!("deploy/{file} is missing"));
    assert_eq!(
        text.matches(anchor).count(),
        1,
        "deploy/{file} should hold {anchor:?} once"
    );
    let at = text.find(anchor).expect("counted above");
    assert!(
        text[at..].contains(from),
        "deploy/{file} should hold {from:?} after {anchor:?}"
    );
    *text = format!("{}{}", &text[..at], text[at..].replacen(from, to, 1));
    files
}

fn assert_caught_after(file: &str, anchor: &str, from: &str, to: &str, says: &str) {
    let found = problems(&broken_after(file, anchor, from, to));
    assert!(
        found.iter().any(|p| p.contains(says)),
        "changing {from:?} to {to:?} after {anchor:?} in deploy/{file} should be caught with {says:?}; found {found:#?}"
    );
}

/// [`assert_caught_after`] for a `from` that occurs once in the file.
fn assert_caught(file: &str, from: &str, to: &str, says: &str) {
    assert_caught_after(file, from, from, to, says);
}

const DEPLOYMENT: &str = "kubernetes/deployment.yaml";
const SERVICE: &str = "kubernetes/service.yaml";
const SECRET: &str = "kubernetes/secret.yaml";
const STATEFULSET: &str = "kubernetes/statefulset/statefulset.yaml";

#[test]
fn the_deploy_files_agree_with_each_other_and_with_the_program() {
    let files = deploy_files();
    for expected in [
        DEPLOYMENT,
        SERVICE,
        SECRET,
        STATEFULSET,
        "fleet.toml",
        "haproxy.cfg",
        "prometheus.yml",
        "prometheus-rules.yml",
        "vector.toml",
        "README.md",
    ] {
        assert!(files.contains_key(expected), "deploy/{expected} is missing");
    }
    assert_eq!(problems(&files), Vec::<String>::new());
}

#[test]
fn a_file_that_does_not_parse_is_named() {
    assert_caught(
        SERVICE,
        "  type: ClusterIP\n",
        "  type: [ClusterIP\n",
        "kubernetes/service.yaml does not parse",
    );
    assert_caught(
        "vector.toml",
        "read_from = \"beginning\"",
        "read_from = beginning\"",
        "vector.toml does not parse",
    );
    assert_caught(
        "prometheus.yml",
        "  - job_name: hessra\n",
        "  - job_name: hessra\n  x: [\n",
        "prometheus.yml does not parse",
    );
}

#[test]
fn a_flag_the_cli_does_not_know_or_a_missing_piece_is_caught() {
    assert_caught(
        DEPLOYMENT,
        "--poll-interval=1s",
        "--poll-every=1s",
        "not accepted by `hessra-console serve`",
    );
    assert_caught(
        DEPLOYMENT,
        "--audit-max-bytes=16MiB",
        "--audit-max-bytes=16MB",
        "not accepted by `hessra-console serve`",
    );
    assert_caught(
        DEPLOYMENT,
        "            - serve\n",
        "            - server\n",
        "not accepted by `hessra-console serve`",
    );
    assert_caught(
        DEPLOYMENT,
        "            - --state-dir=/var/lib/hessra/state\n",
        "",
        "lack --state-dir",
    );
}

#[test]
fn a_port_changed_in_one_place_is_caught() {
    assert_caught(
        DEPLOYMENT,
        "--listen=0.0.0.0:4443",
        "--listen=0.0.0.0:4444",
        "--listen's port Some(4444)",
    );
    assert_caught(
        DEPLOYMENT,
        "containerPort: 4443",
        "containerPort: 8443",
        "--listen's port",
    );
    assert_caught(
        SERVICE,
        "      port: 4443\n      targetPort: https\n      protocol: TCP\n---",
        "      port: 4443\n      targetPort: 8443\n      protocol: TCP\n---",
        "Service hessra: targetPort",
    );
    assert_caught(
        "haproxy.cfg",
        "svc.cluster.local:4443",
        "svc.cluster.local:443",
        "sends to port \"443\"",
    );
    assert_caught(
        "prometheus.yml",
        "regex: \"4443\"",
        "regex: \"9443\"",
        "does not keep the server's port",
    );
}

#[test]
fn a_probe_on_a_missing_or_operator_only_route_is_caught() {
    let probe = "readinessProbe:";
    let (from, https) = ("/public_key", "scheme: HTTPS");
    assert_caught_after(
        DEPLOYMENT,
        probe,
        from,
        "/healthz",
        "/healthz is not a GET route",
    );
    assert_caught_after(
        DEPLOYMENT,
        probe,
        from,
        "/status",
        "/status needs an operator's client certificate",
    );
    assert_caught_after(
        DEPLOYMENT,
        probe,
        https,
        "scheme: HTTP",
        "readinessProbe must use scheme HTTPS",
    );
    assert_caught(
        "haproxy.cfg",
        "uri /public_key",
        "uri /metrics",
        "health check: /metrics needs an operator's client certificate",
    );
}

#[test]
fn a_selector_that_picks_nothing_is_caught() {
    assert_caught_after(
        DEPLOYMENT,
        "  selector:\n",
        "app.kubernetes.io/name: hessra",
        "app.kubernetes.io/name: hessra-old",
        "the Deployment's selector does not pick its own pods",
    );
    assert_caught(
        SERVICE,
        "  type: ClusterIP\n  selector:\n    app.kubernetes.io/name: hessra\n",
        "  type: ClusterIP\n  selector:\n    app.kubernetes.io/name: hessra-server\n",
        "Service hessra selects no pod",
    );
}

#[test]
fn a_mount_without_a_volume_or_a_path_off_the_volumes_is_caught() {
    assert_caught(
        DEPLOYMENT,
        "        - name: state\n          emptyDir:",
        "        - name: scratch\n          emptyDir:",
        "mounts state, which is no volume",
    );
    assert_caught(
        DEPLOYMENT,
        "--state-dir=/var/lib/hessra/state",
        "--state-dir=/var/cache/hessra",
        "--state-dir (/var/cache/hessra) is not on a writable volume",
    );
    assert_caught(
        DEPLOYMENT,
        "--audit-file=/var/lib/hessra/audit/audit.jsonl",
        "--audit-file=/var/log/audit.jsonl",
        "--audit-file (/var/log) is not on a writable volume",
    );
    assert_caught(
        DEPLOYMENT,
        "              mountPath: /run/hessra/keys\n              readOnly: true\n",
        "              mountPath: /run/hessra/keys\n",
        "one replica could rotate its keys alone",
    );
}

#[test]
fn a_file_the_secret_does_not_hold_is_caught() {
    assert_caught(
        DEPLOYMENT,
        "--tls-key=/run/hessra/keys/tls.key",
        "--tls-key=/run/hessra/keys/server.key",
        "names server.key, which no Secret of the pod holds",
    );
    assert_caught(
        SECRET,
        "  root-1.key: |\n",
        "  root-1.pem: |\n",
        "holds no root private key",
    );
    assert_caught(
        SECRET,
        "stringData:\n  # Root private key 1",
        "stringData:\n  keys.toml: |\n    # REPLACE\n  # Root private key 1",
        "holds a keys.toml",
    );
    assert_caught(
        DEPLOYMENT,
        "secretName: hessra-keys",
        "secretName: hessra-key",
        "Secret hessra-key, which kubernetes/ does not define",
    );
    assert_caught(
        SECRET,
        "  known_hosts: |\n",
        "  hosts: |\n",
        "no known_hosts",
    );
    assert_caught(
        SECRET,
        "  id_ed25519: |\n",
        "  deploy_key: |\n",
        "no id_ed25519, id_ecdsa or id_rsa",
    );
    assert_caught(
        DEPLOYMENT,
        "            - name: HOME\n              value: /home/hessra\n",
        "",
        "needs HOME set",
    );
    assert_caught(
        SECRET,
        "type: Opaque\nstringData:\n  # Root private key 1",
        "type: Opaque\ndata:\n  tls.crt: UkVQTEFDRQ==\nstringData:\n  # Root private key 1",
        "Secret hessra-keys has data",
    );
}

#[test]
fn a_real_looking_key_in_the_secret_template_is_caught() {
    assert_caught(
        SECRET,
        "REPLACE with the contents of keys/root-1.key",
        "MC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF",
        "root-1.key is not a placeholder",
    );
}

#[test]
fn a_root_or_writable_container_is_caught() {
    assert_caught(
        DEPLOYMENT,
        "        runAsUser: 10001\n",
        "        runAsUser: 0\n",
        "non-root user",
    );
    let server = "      containers:\n        - name: hessra\n";
    let shipper = "        - name: audit-shipper\n";
    let read_only = "readOnlyRootFilesystem: true";
    let escalation = "allowPrivilegeEscalation: false";
    assert_caught_after(
        DEPLOYMENT,
        server,
        read_only,
        "readOnlyRootFilesystem: false",
        "container hessra: readOnlyRootFilesystem",
    );
    assert_caught_after(
        DEPLOYMENT,
        shipper,
        escalation,
        "allowPrivilegeEscalation: true",
        "container audit-shipper: allowPrivilegeEscalation",
    );
    assert_caught_after(
        DEPLOYMENT,
        "initContainers:",
        read_only,
        "readOnlyRootFilesystem: false",
        "container private-keys: readOnlyRootFilesystem",
    );
}

#[test]
fn a_load_balancer_that_terminates_tls_or_has_too_few_slots_is_caught() {
    assert_caught(
        "haproxy.cfg",
        "    bind :443\n",
        "    bind :443 ssl crt /etc/haproxy/site.pem\n",
        "terminates TLS",
    );
    assert_caught(
        "haproxy.cfg",
        "    mode tcp\n",
        "    mode http\n",
        "must pass TLS through",
    );
    assert_caught(
        "haproxy.cfg",
        "replica 1-8",
        "replica 1-2",
        "2 slots for the Deployment's 3 replicas",
    );
    assert_caught(
        "haproxy.cfg",
        "init-addr none",
        "init-addr none send-proxy-v2",
        "PROXY protocol",
    );
    assert_caught(
        "haproxy.cfg",
        "hessra-replicas.hessra.svc",
        "hessra.hessra.svc",
        "that Service is not headless",
    );
    assert_caught(
        "haproxy.cfg",
        "hessra-replicas.hessra.svc",
        "hessra-pods.hessra.svc",
        "no Service of kubernetes/",
    );
}

#[test]
fn a_scrape_of_the_wrong_path_or_without_a_certificate_is_caught() {
    assert_caught(
        "prometheus.yml",
        "metrics_path: /metrics",
        "metrics_path: /prometheus",
        "/prometheus, which is not a GET route",
    );
    assert_caught(
        "prometheus.yml",
        "      cert_file: /etc/prometheus/secrets/hessra-scraper/tls.crt\n",
        "",
        "needs tls_config cert_file and key_file",
    );
    assert_caught(
        "prometheus.yml",
        "    scheme: https\n",
        "    scheme: http\n",
        "scheme https",
    );
    assert_caught(
        "prometheus.yml",
        "  - prometheus-rules.yml",
        "  - hessra-rules.yml",
        "rule file hessra-rules.yml",
    );
    assert_caught(
        "prometheus-rules.yml",
        "expr: hessra_key_set_failing == 1",
        "expr: hessra_keyset_failing == 1",
        "hessra_keyset_failing is not a metric",
    );
}

#[test]
fn an_audit_shipper_that_misses_files_or_reads_the_checkpoint_is_caught() {
    assert_caught(
        "vector.toml",
        "include = [\"/var/lib/hessra/audit/audit.jsonl*\"]",
        "include = [\"/var/lib/hessra/audit/audit.jsonl\"]",
        "does not read /var/lib/hessra/audit/audit.jsonl.1",
    );
    assert_caught(
        "vector.toml",
        "exclude = [\"/var/lib/hessra/audit/audit.jsonl.head\"]\n",
        "",
        "reads /var/lib/hessra/audit/audit.jsonl.head",
    );
    assert_caught(
        DEPLOYMENT,
        "--audit-file=/var/lib/hessra/audit/audit.jsonl",
        "--audit-file=/var/lib/hessra/audit/decisions.jsonl",
        "does not read /var/lib/hessra/audit/decisions.jsonl",
    );
    assert_caught(
        DEPLOYMENT,
        "              mountPath: /var/lib/hessra/audit\n              readOnly: true\n",
        "              mountPath: /var/lib/hessra/trail\n              readOnly: true\n",
        "does not see /var/lib/hessra/audit",
    );
    assert_caught(
        "vector.toml",
        "inputs = [\"hessra_audit_events\"]",
        "inputs = [\"hessra_events\"]",
        "reads hessra_events, which is not defined",
    );
    assert_caught(
        "vector.toml",
        "data_dir = \"/var/lib/vector\"",
        "data_dir = \"/data\"",
        "data_dir \"/data\" is not on a writable volume",
    );
    assert_caught(
        DEPLOYMENT,
        "            - name: POD_NAME\n",
        "            - name: REPLICA\n",
        "reads $POD_NAME",
    );
    assert_caught(
        DEPLOYMENT,
        "args: [\"--config\", \"/etc/vector/vector.toml\"]",
        "args: [\"--config\", \"/etc/vector.toml\"]",
        "not vector.toml from a ConfigMap volume",
    );
}

#[test]
fn the_glob_matches_as_vector_would() {
    assert!(glob_matches("/a/audit.jsonl*", "/a/audit.jsonl"));
    assert!(glob_matches("/a/audit.jsonl*", "/a/audit.jsonl.3"));
    assert!(!glob_matches("/a/audit.jsonl*", "/a/audit-signing.pk8"));
    assert!(glob_matches("/a/*.head", "/a/audit.jsonl.head"));
    assert!(!glob_matches("/a/*.head", "/a/audit.jsonl"));
}

#[test]
fn a_statefulset_that_drifts_from_the_deployment_or_its_fleet_file_is_caught() {
    assert_caught(
        STATEFULSET,
        "--poll-interval=1s",
        "--poll-interval=5s",
        "differs from the Deployment's",
    );
    assert_caught_after(
        STATEFULSET,
        "kind: StatefulSet",
        "replicas: 3",
        "replicas: 4",
        "fleet.toml lists",
    );
    assert_caught(
        "fleet.toml",
        "hessra-2.hessra-replicas.hessra.svc.cluster.local:4443",
        "hessra-2.hessra-replicas.hessra.svc.cluster.local:4444",
        "fleet.toml lists",
    );
    assert_caught(
        "fleet.toml",
        "name = \"hessra-1\"",
        "name = \"hessra-0\"",
        "two replicas are named",
    );
    assert_caught(
        STATEFULSET,
        "serviceName: hessra-replicas",
        "serviceName: hessra",
        "is not a headless Service",
    );
    assert_caught_after(
        STATEFULSET,
        "volumeClaimTemplates:",
        "name: audit",
        "name: logs",
        "claim logs does not replace an emptyDir volume",
    );
}
