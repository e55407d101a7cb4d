//! Lossless edits of `clients.toml`: every operation changes the entries it names and leaves
//! every other byte (comments, ordering, quoting, blank lines) as it was.

use std::collections::HashMap;
use std::ops::Range;

use serde::Serialize;
use toml_edit::{Array, ArrayOfTables, DocumentMut, InlineTable, Item, Table, Value, value};

/// A change to the policy, as the console, the CLI and undo history name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "edit")]
pub enum Edit {
    AddClient {
        identity: String,
    },
    RemoveClient {
        identity: String,
    },
    RenameClient {
        from: String,
        to: String,
    },
    Grant {
        identity: String,
        resource: String,
        operation: String,
    },
    Revoke {
        identity: String,
        resource: String,
        operation: String,
    },
    SetIdentityTokens {
        identity: String,
        enabled: bool,
        duration: Option<u64>,
    },
    SetSetting {
        identity: String,
        setting: Setting,
        value: Option<i64>,
    },
    AddRole {
        realm: String,
        role: String,
    },
    RemoveRole {
        realm: String,
        role: String,
    },
    RenameRole {
        realm: String,
        from: String,
        to: String,
    },
    RoleGrant {
        realm: String,
        role: String,
        resource: String,
        operation: String,
    },
    RoleRevoke {
        realm: String,
        role: String,
        resource: String,
        operation: String,
    },
    SetDefaultRole {
        realm: String,
        role: String,
    },
    Assign {
        realm: String,
        subject: String,
        role: String,
    },
    Unassign {
        realm: String,
        subject: String,
    },
    SetCaChain {
        pem: String,
    },
    AddServiceNode {
        identity: String,
        resource: String,
        component: String,
        public_key: String,
    },
    RemoveServiceNode {
        identity: String,
        resource: String,
        component: String,
    },
    AddSigner {
        identity: String,
        resource: String,
        component: String,
        authorization_service: String,
        public_key: String,
    },
    RemoveSigner {
        identity: String,
        resource: String,
        component: String,
    },
}

/// Per-client settings with a scalar value; `None` removes the key (back to the default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Setting {
    Delegatable,
    Operator,
    AuthorizationTokenDuration,
    MaxDelegationDepth,
}

impl Setting {
    pub const ALL: [Setting; 4] = [
        Setting::Delegatable,
        Setting::Operator,
        Setting::AuthorizationTokenDuration,
        Setting::MaxDelegationDepth,
    ];

    /// The setting named by its `clients.toml` key.
    pub fn from_key(key: &str) -> Option<Setting> {
        Setting::ALL.into_iter().find(|s| s.key() == key)
    }

    /// Reads a value as typed by a person: `true`/`false` for switches, a lifetime (`5m`, `8h`,
    /// or seconds) for a duration, a whole number otherwise, `default` to remove the key.
    pub fn parse_value(self, text: &str) -> Result<Option<i64>, String> {
        let key = self.key();
        match (text, self.is_bool()) {
            ("default", _) => Ok(None),
            (other, _) if self == Setting::AuthorizationTokenDuration => {
                super::duration::parse(other)
                    .map(|seconds| Some(seconds as i64))
                    .map_err(|e| format!("{key}: {e}"))
            }
            ("true" | "yes" | "on", true) => Ok(Some(1)),
            ("false" | "no" | "off", true) => Ok(Some(0)),
            (other, true) => Err(format!("{key} is true or false, not {other:?}")),
            (other, false) => other
                .parse::<u32>()
                .map(|n| Some(i64::from(n)))
                .map_err(|_| format!("{key} is a whole number (or default), not {other:?}")),
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Setting::Delegatable => "delegatable",
            Setting::Operator => "operator",
            Setting::AuthorizationTokenDuration => "authorization_token_duration",
            Setting::MaxDelegationDepth => "max_delegation_depth",
        }
    }

    fn is_bool(self) -> bool {
        matches!(self, Setting::Delegatable | Setting::Operator)
    }
}

/// Why an edit could not be applied. Nothing is changed when an edit fails.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error("no client {0} in the policy")]
    UnknownClient(String),
    #[error("client {0} already exists")]
    ClientExists(String),
    #[error("{0} is not a realm (it has no [clients.domain] table)")]
    NotARealm(String),
    #[error("realm {realm} has no role {role}")]
    UnknownRole { realm: String, role: String },
    #[error("realm {realm} already has a role {role}")]
    RoleExists { realm: String, role: String },
    #[error("{subject} has no role assignment in realm {realm}")]
    UnknownAssignment { realm: String, subject: String },
    #[error("{what} not found")]
    NotFound { what: String },
    #[error(
        "cannot edit {0}: the file writes it in a shape this editor does not change; edit it by hand"
    )]
    Layout(String),
}

/// The editable document: the text and the byte range of each `[[clients]]` entry, so an edit to
/// one client parses, edits and re-prints only that client and splices it into the text: every
/// other byte is the original byte, and a one-client edit of a 10,000-client file costs a copy of
/// the text rather than a parse and re-serialization of all of it. The whole `toml_edit` tree
/// (many times the text's size) is built only for edits that need it — adding or removing a
/// client, the CA chain, layouts splicing does not handle — and kept from then on.
#[derive(Debug, Clone)]
pub struct PolicyDocument {
    doc: Option<DocumentMut>,
    text: String,
    /// Byte range of each client (its leading comments, header, keys and sub-tables), in order.
    /// `None` when the layout is not one splicing understands; edits then re-print everything.
    regions: Option<Vec<Range<usize>>>,
    /// Identity → position in the clients array (the first entry wins for duplicates).
    positions: HashMap<String, usize>,
}

impl std::fmt::Display for PolicyDocument {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl PolicyDocument {
    /// Builds the document from a span-keeping parse.
    pub(crate) fn from_parsed(parsed: &toml_edit::Document<String>) -> Self {
        PolicyDocument {
            positions: client_positions(parsed.as_table()),
            doc: None,
            text: parsed.raw().to_string(),
            regions: client_regions(parsed),
        }
    }

    /// The whole tree, parsed from the text the first time it is needed.
    fn doc_mut(&mut self) -> Result<&mut DocumentMut, EditError> {
        if self.doc.is_none() {
            let doc: DocumentMut = self
                .text
                .parse()
                .map_err(|e| EditError::Layout(format!("the document ({e})")))?;
            self.doc = Some(doc);
        }
        Ok(self.doc.as_mut().expect("set just above"))
    }

    fn position(&self, identity: &str) -> Result<usize, EditError> {
        self.positions
            .get(identity)
            .copied()
            .ok_or_else(|| EditError::UnknownClient(identity.to_string()))
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// Applies an edit; on error the document is unchanged.
    pub fn apply(&mut self, edit: &Edit) -> Result<(), EditError> {
        match client_scope(edit) {
            Some(identity) => self.apply_to_client(identity, edit),
            None => self.apply_to_document(edit),
        }
    }

    /// Edits confined to one client: applied to a copy of that client's table, then spliced.
    fn apply_to_client(&mut self, identity: &str, edit: &Edit) -> Result<(), EditError> {
        if let Edit::RenameClient { to, .. } = edit
            && self.positions.contains_key(to.as_str())
        {
            return Err(EditError::ClientExists(to.clone()));
        }
        let index = self.position(identity)?;
        if self.doc.is_none() && self.edit_region(index, edit)? {
            if let Edit::RenameClient { from, to } = edit {
                self.positions.remove(from.as_str());
                self.positions.insert(to.clone(), index);
            }
            return Ok(());
        }
        let clients = clients_mut(self.doc_mut()?)?;
        let original = clients.get(index).expect("index found above");
        let mut table = original.clone();
        edit_client(&mut table, edit)?;
        let before = print_client(original);
        let after = print_client(&table);
        clients.replace(index, table);
        let region = self.regions.as_ref().and_then(|r| r.get(index)).cloned();
        match region {
            Some(region) if self.text.get(region.clone()) == Some(before.as_str()) => {
                self.splice(index, region, &after);
            }
            _ => self.reprint(),
        }
        if let Edit::RenameClient { from, to } = edit {
            self.positions.remove(from.as_str());
            self.positions.insert(to.clone(), index);
        }
        Ok(())
    }

    /// Edits client `index` from its own text alone. False when its text is not what printing
    /// it alone gives back (then the whole tree is used).
    fn edit_region(&mut self, index: usize, edit: &Edit) -> Result<bool, EditError> {
        let Some(region) = self.regions.as_ref().and_then(|r| r.get(index)).cloned() else {
            return Ok(false);
        };
        let Ok(mut alone) = self.text[region.clone()].parse::<DocumentMut>() else {
            return Ok(false);
        };
        let Some(table) = alone
            .get_mut("clients")
            .and_then(Item::as_array_of_tables_mut)
            .filter(|clients| clients.len() == 1)
            .and_then(|clients| clients.get_mut(0))
        else {
            return Ok(false);
        };
        if print_client(table) != self.text[region.clone()] {
            return Ok(false);
        }
        edit_client(table, edit)?;
        let after = print_client(table);
        self.splice(index, region, &after);
        Ok(true)
    }

    fn apply_to_document(&mut self, edit: &Edit) -> Result<(), EditError> {
        match edit {
            Edit::AddClient { identity } => {
                if self.positions.contains_key(identity.as_str()) {
                    return Err(EditError::ClientExists(identity.clone()));
                }
                let doc = self.doc_mut()?;
                add_client(doc, identity)?;
                let trailing = doc.trailing().as_str().map_or(0, str::len);
                let clients = clients_mut(doc)?;
                let count = clients.len();
                let printed = print_client(clients.get(count - 1).expect("just pushed"));
                self.positions.insert(identity.clone(), count - 1);
                let end = self.text.len() - trailing;
                let at_end = self
                    .regions
                    .as_ref()
                    .is_some_and(|r| r.last().is_none_or(|last| last.end == end));
                if at_end {
                    self.text.insert_str(end, &printed);
                    if let Some(regions) = &mut self.regions {
                        regions.push(end..end + printed.len());
                    }
                } else {
                    self.reprint();
                }
                Ok(())
            }
            Edit::RemoveClient { identity } => {
                let index = self.position(identity)?;
                let region = self.regions.as_ref().and_then(|r| r.get(index)).cloned();
                let doc = self.doc_mut()?;
                let removed = remove_client(doc, index)?;
                let positions = client_positions(doc.as_table());
                self.positions = positions;
                match region {
                    Some(region) if !removed.moved_to_trailing => {
                        self.splice(index, region, &removed.paragraphs);
                        if let Some(regions) = &mut self.regions {
                            let merged = regions.remove(index);
                            if let Some(next) = regions.get_mut(index) {
                                next.start = merged.start;
                            }
                        }
                    }
                    _ => self.reprint(),
                }
                Ok(())
            }
            other => {
                let mut scratch = self.doc_mut()?.clone();
                apply_document_edit(&mut scratch, other)?;
                self.doc = Some(scratch);
                self.reprint();
                Ok(())
            }
        }
    }

    /// Replaces region `index` with `replacement`, shifting the regions after it.
    fn splice(&mut self, index: usize, region: Range<usize>, replacement: &str) {
        self.text.replace_range(region.clone(), replacement);
        if let Some(regions) = &mut self.regions {
            let new_end = region.start + replacement.len();
            regions[index].end = new_end;
            for later in &mut regions[index + 1..] {
                later.start = later.start - region.end + new_end;
                later.end = later.end - region.end + new_end;
            }
        }
    }

    /// Re-prints the whole document; regions are recomputed from a fresh parse.
    fn reprint(&mut self) {
        let Some(doc) = &self.doc else { return };
        self.text = doc.to_string();
        self.regions = toml_edit::Document::parse(self.text.clone())
            .ok()
            .and_then(|parsed| client_regions(&parsed));
    }
}

/// The client an edit is confined to, if it is.
fn client_scope(edit: &Edit) -> Option<&str> {
    match edit {
        Edit::AddClient { .. } | Edit::RemoveClient { .. } | Edit::SetCaChain { .. } => None,
        Edit::RenameClient { from: identity, .. }
        | Edit::Grant { identity, .. }
        | Edit::Revoke { identity, .. }
        | Edit::SetIdentityTokens { identity, .. }
        | Edit::SetSetting { identity, .. }
        | Edit::AddServiceNode { identity, .. }
        | Edit::RemoveServiceNode { identity, .. }
        | Edit::AddSigner { identity, .. }
        | Edit::RemoveSigner { identity, .. } => Some(identity),
        Edit::AddRole { realm, .. }
        | Edit::RemoveRole { realm, .. }
        | Edit::RenameRole { realm, .. }
        | Edit::RoleGrant { realm, .. }
        | Edit::RoleRevoke { realm, .. }
        | Edit::SetDefaultRole { realm, .. }
        | Edit::Assign { realm, .. }
        | Edit::Unassign { realm, .. } => Some(realm),
    }
}

/// One client printed on its own, exactly as it prints inside the whole document.
fn print_client(table: &Table) -> String {
    let mut alone = DocumentMut::new();
    let mut clients = ArrayOfTables::new();
    clients.push(table.clone());
    alone.insert("clients", Item::ArrayOfTables(clients));
    alone.to_string()
}

/// Where an entry's text starts: at its leading comments, else at its header.
fn entry_start(table: &Table) -> Option<usize> {
    let header = table.span()?.start;
    let prefix = table
        .decor()
        .prefix()
        .and_then(|p| p.span())
        .map(|s| s.start);
    Some(prefix.map_or(header, |p| p.min(header)))
}

/// Byte ranges of the clients in a span-keeping parse, or `None` for layouts splicing does not
/// handle (clients written inline, spans missing).
fn client_regions(parsed: &toml_edit::Document<String>) -> Option<Vec<Range<usize>>> {
    let root = parsed.as_table();
    let clients = root.get("clients")?.as_array_of_tables()?;
    let starts: Vec<usize> = clients.iter().map(entry_start).collect::<Option<_>>()?;
    // Other top-level tables end a client's text too.
    let mut boundaries: Vec<usize> = root
        .iter()
        .filter(|(key, _)| *key != "clients")
        .filter_map(|(_, item)| item.as_table().and_then(entry_start))
        .collect();
    boundaries.extend(starts.iter().copied());
    let trailing = parsed
        .trailing()
        .span()
        .map_or(parsed.raw().len(), |s| s.start);
    boundaries.push(trailing);
    boundaries.sort_unstable();
    starts
        .iter()
        .map(|&start| {
            let end = boundaries.iter().copied().find(|&b| b > start)?;
            Some(start..end)
        })
        .collect()
}

/// Applies a client-scoped edit to that client's table.
fn edit_client(table: &mut Table, edit: &Edit) -> Result<(), EditError> {
    match edit {
        Edit::RenameClient { from, to } => {
            let identifier = table
                .get_mut("identifier")
                .and_then(Item::as_table_like_mut)
                .ok_or_else(|| EditError::Layout(format!("the identifier of {from}")))?;
            set_string(identifier.get_mut("value"), to);
            Ok(())
        }
        Edit::Grant {
            identity,
            resource,
            operation,
        } => grant(table, identity, resource, operation),
        Edit::Revoke {
            identity,
            resource,
            operation,
        } => revoke(table, identity, resource, operation),
        Edit::SetIdentityTokens {
            enabled, duration, ..
        } => {
            set_value(table, "identity_token_enabled", Some(Value::from(*enabled)));
            set_value(
                table,
                "identity_token_duration",
                duration.map(|d| Value::from(d as i64)),
            );
            restate_duration(table, "identity_token_duration", *duration);
            Ok(())
        }
        Edit::SetSetting {
            setting,
            value: stated,
            ..
        } => {
            let new = stated.map(|v| {
                if setting.is_bool() {
                    Value::from(v != 0)
                } else {
                    Value::from(v)
                }
            });
            set_value(table, setting.key(), new);
            if *setting == Setting::AuthorizationTokenDuration {
                restate_duration(table, setting.key(), stated.map(|v| v.max(0) as u64));
            }
            Ok(())
        }
        Edit::AddRole { realm, role } => add_role(table, realm, role),
        Edit::RemoveRole { realm, role } => {
            let roles = roles_mut(domain_mut(table, realm)?, realm)?;
            let index = find_named(roles, role).ok_or_else(|| unknown_role(realm, role))?;
            roles.remove(index);
            Ok(())
        }
        Edit::RenameRole { realm, from, to } => rename_role(table, realm, from, to),
        Edit::RoleGrant {
            realm,
            role,
            resource,
            operation,
        } => {
            let section = role_mut(domain_mut(table, realm)?, realm, role)?;
            grant(section, &format!("role {role}"), resource, operation)
        }
        Edit::RoleRevoke {
            realm,
            role,
            resource,
            operation,
        } => {
            let section = role_mut(domain_mut(table, realm)?, realm, role)?;
            revoke(section, &format!("role {role}"), resource, operation)
        }
        Edit::SetDefaultRole { realm, role } => set_default_role(table, realm, role),
        Edit::Assign {
            realm,
            subject,
            role,
        } => assign(table, realm, subject, role),
        Edit::Unassign { realm, subject } => {
            let domain = domain_mut(table, realm)?;
            let unknown = || EditError::UnknownAssignment {
                realm: realm.clone(),
                subject: subject.clone(),
            };
            let assignments = domain.get_mut("role_assignments").ok_or_else(unknown)?;
            let list = TableList::of(assignments, "role_assignments")?;
            let index = list
                .position(|t| str_of(t, "subject") == Some(subject))
                .ok_or_else(unknown)?;
            list.remove(index);
            Ok(())
        }
        Edit::AddServiceNode {
            identity,
            resource,
            component,
            public_key,
        } => {
            let entry = resource_entry_mut(table, identity, resource)?;
            let mut node = InlineTable::new();
            node.insert("component", component.as_str().into());
            node.insert("public_key", public_key.as_str().into());
            push_inline(entry, "service_chain", node)
        }
        Edit::RemoveServiceNode {
            identity,
            resource,
            component,
        } => {
            let entry = resource_entry_mut(table, identity, resource)?;
            remove_by_component(entry, "service_chain", component)
        }
        Edit::AddSigner {
            identity,
            resource,
            component,
            authorization_service,
            public_key,
        } => {
            let entry = resource_entry_mut(table, identity, resource)?;
            let mut signer = InlineTable::new();
            signer.insert("component", component.as_str().into());
            signer.insert(
                "authorization_service",
                authorization_service.as_str().into(),
            );
            signer.insert("public_key", public_key.as_str().into());
            push_inline(entry, "signers", signer)
        }
        Edit::RemoveSigner {
            identity,
            resource,
            component,
        } => {
            let entry = resource_entry_mut(table, identity, resource)?;
            remove_by_component(entry, "signers", component)
        }
        Edit::AddClient { .. } | Edit::RemoveClient { .. } | Edit::SetCaChain { .. } => {
            Err(EditError::Layout(format!("{edit:?} as a client edit")))
        }
    }
}

/// Document-level edits other than adding and removing clients.
fn apply_document_edit(doc: &mut DocumentMut, edit: &Edit) -> Result<(), EditError> {
    let Edit::SetCaChain { pem } = edit else {
        return Err(EditError::Layout(format!("{edit:?} as a document edit")));
    };
    let cacerts = doc
        .entry("cacerts")
        .or_insert_with(|| {
            let mut table = Table::new();
            table.decor_mut().set_prefix("\n");
            Item::Table(table)
        })
        .as_table_like_mut()
        .ok_or_else(|| EditError::Layout("[cacerts]".into()))?;
    cacerts.insert("cert_chain", Item::Value(Value::from(pem.as_str())));
    Ok(())
}

fn unknown_role(realm: &str, role: &str) -> EditError {
    EditError::UnknownRole {
        realm: realm.to_string(),
        role: role.to_string(),
    }
}

// --- clients -----------------------------------------------------------------------------------

fn clients_mut(doc: &mut DocumentMut) -> Result<&mut ArrayOfTables, EditError> {
    doc.entry("clients")
        .or_insert_with(|| Item::ArrayOfTables(ArrayOfTables::new()))
        .as_array_of_tables_mut()
        .ok_or_else(|| EditError::Layout("clients (written as an inline array)".into()))
}

fn identity_of(table: &Table) -> Option<&str> {
    table
        .get("identifier")?
        .as_table_like()?
        .get("value")?
        .as_str()
}

fn client_positions(root: &Table) -> HashMap<String, usize> {
    let mut positions = HashMap::new();
    let clients = root.get("clients").and_then(Item::as_array_of_tables);
    for (index, table) in clients.into_iter().flat_map(|c| c.iter()).enumerate() {
        if let Some(identity) = identity_of(table) {
            positions.entry(identity.to_string()).or_insert(index);
        }
    }
    positions
}

/// What removing a client leaves behind: the paragraphs above its own comment (section
/// headings), and whether they went to the document's end.
struct Removed {
    paragraphs: String,
    moved_to_trailing: bool,
}

/// Removes a client with the comment paragraph attached to its header; paragraphs above a blank
/// line (section headings) stay, moved to whatever follows.
fn remove_client(doc: &mut DocumentMut, index: usize) -> Result<Removed, EditError> {
    let clients = clients_mut(doc)?;
    let removed = clients.remove(index);
    let prefix = removed
        .decor()
        .prefix()
        .and_then(|p| p.as_str())
        .unwrap_or_default();
    let kept = match prefix.rfind("\n\n") {
        Some(end) => prefix[..end + 1].to_string(),
        None => String::new(),
    };
    if kept.trim().is_empty() {
        return Ok(Removed {
            paragraphs: String::new(),
            moved_to_trailing: false,
        });
    }
    match clients.get_mut(index) {
        Some(next) => {
            let next_prefix = next
                .decor()
                .prefix()
                .and_then(|p| p.as_str())
                .unwrap_or_default()
                .to_string();
            next.decor_mut().set_prefix(format!("{kept}{next_prefix}"));
            Ok(Removed {
                paragraphs: kept,
                moved_to_trailing: false,
            })
        }
        None => {
            let trailing = doc.trailing().as_str().unwrap_or_default().to_string();
            doc.set_trailing(format!("{trailing}{kept}"));
            Ok(Removed {
                paragraphs: kept,
                moved_to_trailing: true,
            })
        }
    }
}

/// Appends a client; the caller has checked that it does not exist yet.
fn add_client(doc: &mut DocumentMut, identity: &str) -> Result<(), EditError> {
    let mut identifier = InlineTable::new();
    identifier.insert("type", "san_uri".into());
    identifier.insert("value", identity.into());
    let mut table = Table::new();
    table.insert("identifier", value(identifier));
    table.insert("resources", value(Array::new()));
    table.decor_mut().set_prefix("\n");
    // Place it after everything else so that it never lands between a realm and its sub-tables.
    let last = doc
        .as_table()
        .iter()
        .filter_map(|(_, item)| max_position(item))
        .max()
        .unwrap_or(0);
    table.set_position(Some(last + 1));
    clients_mut(doc)?.push(table);
    Ok(())
}

fn max_position(item: &Item) -> Option<isize> {
    match item {
        Item::Table(table) => table
            .iter()
            .filter_map(|(_, child)| max_position(child))
            .chain(table.position())
            .max(),
        Item::ArrayOfTables(array) => array
            .iter()
            .flat_map(|t| {
                t.iter()
                    .filter_map(|(_, child)| max_position(child))
                    .chain(t.position())
            })
            .max(),
        _ => None,
    }
}

// --- resources and operations -----------------------------------------------------------------

/// A list of tables written either as `key = [ {…}, … ]` or as `[[…key]]` sections.
enum TableList<'a> {
    Inline(&'a mut Array),
    Tables(&'a mut ArrayOfTables),
}

impl<'a> TableList<'a> {
    fn of(item: &'a mut Item, what: &str) -> Result<TableList<'a>, EditError> {
        if item.is_array_of_tables() {
            return Ok(TableList::Tables(
                item.as_array_of_tables_mut().expect("checked just above"),
            ));
        }
        match item.as_array_mut() {
            Some(array) if array.iter().all(Value::is_inline_table) => Ok(TableList::Inline(array)),
            _ => Err(EditError::Layout(what.to_string())),
        }
    }

    fn position(&self, found: impl Fn(&dyn toml_edit::TableLike) -> bool) -> Option<usize> {
        match self {
            TableList::Inline(array) => array
                .iter()
                .position(|v| v.as_inline_table().is_some_and(|t| found(t))),
            TableList::Tables(tables) => tables.iter().position(|t| found(t)),
        }
    }

    fn get_mut(&mut self, index: usize) -> Option<&mut dyn toml_edit::TableLike> {
        match self {
            TableList::Inline(array) => array
                .get_mut(index)
                .and_then(Value::as_inline_table_mut)
                .map(|t| t as &mut dyn toml_edit::TableLike),
            TableList::Tables(tables) => tables
                .get_mut(index)
                .map(|t| t as &mut dyn toml_edit::TableLike),
        }
    }

    fn remove(self, index: usize) {
        match self {
            TableList::Inline(array) => remove_value(array, index),
            TableList::Tables(tables) => {
                tables.remove(index);
            }
        }
    }

    fn push(self, table: InlineTable) {
        match self {
            TableList::Inline(array) => push_value(array, Value::InlineTable(table)),
            TableList::Tables(tables) => {
                let mut section = table.into_table();
                section.decor_mut().set_prefix("\n");
                tables.push(section);
            }
        }
    }

    fn len(&self) -> usize {
        match self {
            TableList::Inline(array) => array.len(),
            TableList::Tables(tables) => tables.len(),
        }
    }
}

fn str_of<'t>(table: &'t dyn toml_edit::TableLike, key: &str) -> Option<&'t str> {
    table.get(key)?.as_str()
}

/// Pushes onto an array in the style of its last element (same indentation, same separator).
/// In a multi-line array, a comment trailing the last element stays on that element's line.
fn push_value(array: &mut Array, mut new: Value) {
    let last_prefix = array.iter().last().and_then(|v| {
        v.decor()
            .prefix()
            .and_then(|p| p.as_str())
            .map(str::to_string)
    });
    let trailing = array.trailing().as_str().unwrap_or_default().to_string();
    let prefix = match (array.len(), last_prefix) {
        (0, _) => String::new(),
        (_, Some(last)) if last.contains('\n') => {
            let indent = last.rsplit('\n').next().unwrap_or_default();
            let (comment, rest) = trailing.split_once('\n').unwrap_or((trailing.as_str(), ""));
            let prefix = format!("{comment}\n{indent}");
            array.set_trailing(format!("\n{rest}"));
            prefix
        }
        // The first element of a one-line array has no leading space; later ones have one.
        (1, _) => " ".to_string(),
        (_, last) => last.unwrap_or_default(),
    };
    new.decor_mut().set_prefix(prefix);
    new.decor_mut().set_suffix("");
    array.push_formatted(new);
}

/// Removes an element; when it was the first, the next one inherits its leading whitespace.
fn remove_value(array: &mut Array, index: usize) {
    let removed = array.remove(index);
    if array.is_empty() {
        // What trailed the last element (its comma, its comment) belonged to it.
        let multi_line = array.trailing().as_str().is_some_and(|t| t.contains('\n'));
        array.set_trailing(if multi_line { "\n" } else { "" });
        array.set_trailing_comma(false);
        return;
    }
    let prefix = removed.decor().prefix().and_then(|p| p.as_str());
    if let (0, Some(next), Some(prefix)) = (index, array.get_mut(0), prefix) {
        next.decor_mut().set_prefix(prefix.to_string());
    }
}

fn resources_list<'t>(owner: &'t mut Table, who: &str) -> Result<TableList<'t>, EditError> {
    let item = owner
        .entry("resources")
        .or_insert_with(|| value(Array::new()));
    TableList::of(item, &format!("the resources of {who}"))
}

fn resource_entry_mut<'t>(
    owner: &'t mut Table,
    who: &str,
    resource: &str,
) -> Result<&'t mut dyn toml_edit::TableLike, EditError> {
    let list = resources_list(owner, who)?;
    let index = list
        .position(|t| str_of(t, "name") == Some(resource))
        .ok_or_else(|| EditError::NotFound {
            what: format!("resource {resource} of {who}"),
        })?;
    // Re-borrow with the owner's lifetime.
    match list {
        TableList::Inline(array) => Ok(array
            .get_mut(index)
            .and_then(Value::as_inline_table_mut)
            .expect("index found above")),
        TableList::Tables(tables) => Ok(tables.get_mut(index).expect("index found above")),
    }
}

fn grant(owner: &mut Table, who: &str, resource: &str, operation: &str) -> Result<(), EditError> {
    let mut list = resources_list(owner, who)?;
    match list.position(|t| str_of(t, "name") == Some(resource)) {
        Some(index) => {
            let entry = list.get_mut(index).expect("index found above");
            let operations = entry
                .entry("operations")
                .or_insert(value(Array::new()))
                .as_array_mut()
                .ok_or_else(|| {
                    EditError::Layout(format!("the operations of {resource} ({who})"))
                })?;
            if !operations.iter().any(|v| v.as_str() == Some(operation)) {
                push_value(operations, operation.into());
            }
        }
        None => {
            let mut operations = Array::new();
            operations.push(operation);
            let mut entry = InlineTable::new();
            entry.insert("name", resource.into());
            entry.insert("operations", Value::Array(operations));
            list.push(entry);
        }
    }
    Ok(())
}

fn revoke(owner: &mut Table, who: &str, resource: &str, operation: &str) -> Result<(), EditError> {
    let not_granted = || EditError::NotFound {
        what: format!("{operation} on {resource} for {who}"),
    };
    let mut list = resources_list(owner, who)?;
    let index = list
        .position(|t| str_of(t, "name") == Some(resource))
        .ok_or_else(not_granted)?;
    let entry = list.get_mut(index).expect("index found above");
    let operations = entry
        .get_mut("operations")
        .and_then(Item::as_array_mut)
        .ok_or_else(not_granted)?;
    let position = operations
        .iter()
        .position(|v| v.as_str() == Some(operation))
        .ok_or_else(not_granted)?;
    remove_value(operations, position);
    if operations.is_empty() {
        list.remove(index);
    }
    Ok(())
}

fn push_inline(
    entry: &mut dyn toml_edit::TableLike,
    key: &str,
    table: InlineTable,
) -> Result<(), EditError> {
    let item = entry.entry(key).or_insert(value(Array::new()));
    TableList::of(item, key)?.push(table);
    Ok(())
}

fn remove_by_component(
    entry: &mut dyn toml_edit::TableLike,
    key: &str,
    component: &str,
) -> Result<(), EditError> {
    let missing = || EditError::NotFound {
        what: format!("{key} entry {component}"),
    };
    let item = entry.get_mut(key).ok_or_else(missing)?;
    let list = TableList::of(item, key)?;
    let index = list
        .position(|t| str_of(t, "component") == Some(component))
        .ok_or_else(missing)?;
    let now_empty = list.len() == 1;
    list.remove(index);
    if now_empty {
        entry.remove(key);
    }
    Ok(())
}

fn set_string(item: Option<&mut Item>, text: &str) {
    if let Some(item) = item {
        let decor = item.as_value().map(|v| v.decor().clone());
        *item = value(text);
        if let (Some(decor), Some(v)) = (decor, item.as_value_mut()) {
            *v.decor_mut() = decor;
        }
    }
}

/// A trailing comment that states a duration (`# 8 hours`, `# 30 min`, `# 2h`) would state the
/// old value after the key changes: it is rewritten to the new value in the same style (words or
/// abbreviations, the unit that divides the value). Any other comment is kept as written.
fn restate_duration(table: &mut Table, key: &str, seconds: Option<u64>) {
    let Some(seconds) = seconds else { return };
    let Some(value) = table.get_mut(key).and_then(Item::as_value_mut) else {
        return;
    };
    let Some(suffix) = value.decor().suffix().and_then(|s| s.as_str()) else {
        return;
    };
    if let Some(restated) = restated_comment(suffix, seconds) {
        value.decor_mut().set_suffix(restated);
    }
}

/// The comment `suffix` (`" # 8 hours"`, `" # 8h"`) restating `seconds` in the comment's own
/// style (words, or the short form `policy::duration` reads), or `None` when it does not state a
/// duration.
fn restated_comment(suffix: &str, seconds: u64) -> Option<String> {
    let hash = suffix.find('#')?;
    let (before, after) = suffix.split_at(hash + 1);
    if !before[..hash].trim().is_empty() {
        return None;
    }
    let body = after.trim();
    if body.is_empty() {
        return None;
    }
    let lead = &after[..after.find(body)?];
    let trail = &after[lead.len() + body.len()..];
    let stated = if states_in_words(body) {
        super::duration::describe(seconds)
    } else if body.contains(|c: char| c.is_alphabetic()) && super::duration::parse(body).is_ok() {
        super::duration::format(seconds)
    } else {
        return None;
    };
    Some(format!("{before}{lead}{stated}{trail}"))
}

/// "8 hours", "1 hour 30 minutes", "2 hrs": numbers, each followed by a unit word.
fn states_in_words(body: &str) -> bool {
    const WORDS: [&str; 14] = [
        "day", "days", "hour", "hours", "hr", "hrs", "minute", "minutes", "min", "mins", "second",
        "seconds", "sec", "secs",
    ];
    let words: Vec<&str> = body.split_whitespace().collect();
    !words.is_empty()
        && words.len().is_multiple_of(2)
        && words.chunks(2).all(|pair| {
            !pair[0].is_empty()
                && pair[0].chars().all(|c| c.is_ascii_digit())
                && WORDS.contains(&pair[1].to_ascii_lowercase().as_str())
        })
}

/// Sets or removes a key, keeping the decor (e.g. a trailing comment) of an existing value.
fn set_value(table: &mut Table, key: &str, new: Option<Value>) {
    match new {
        None => {
            table.remove(key);
        }
        Some(mut new) => {
            if let Some(old) = table.get(key).and_then(Item::as_value) {
                *new.decor_mut() = old.decor().clone();
            }
            table.insert(key, Item::Value(new));
        }
    }
}

// --- realms -------------------------------------------------------------------------------------

fn domain_mut<'d>(client: &'d mut Table, realm: &str) -> Result<&'d mut Table, EditError> {
    client
        .get_mut("domain")
        .and_then(Item::as_table_mut)
        .ok_or_else(|| EditError::NotARealm(realm.to_string()))
}

fn domain_or_create<'d>(client: &'d mut Table, realm: &str) -> Result<&'d mut Table, EditError> {
    let item = client.entry("domain").or_insert_with(|| {
        let mut table = Table::new();
        table.set_implicit(true);
        Item::Table(table)
    });
    item.as_table_mut()
        .ok_or_else(|| EditError::Layout(format!("the domain of {realm}")))
}

fn roles_mut<'d>(domain: &'d mut Table, realm: &str) -> Result<&'d mut ArrayOfTables, EditError> {
    domain
        .entry("roles")
        .or_insert_with(|| Item::ArrayOfTables(ArrayOfTables::new()))
        .as_array_of_tables_mut()
        .ok_or_else(|| EditError::Layout(format!("the roles of {realm}")))
}

fn find_named(tables: &ArrayOfTables, name: &str) -> Option<usize> {
    tables
        .iter()
        .position(|t| t.get("name").and_then(Item::as_str) == Some(name))
}

fn is_default_role(domain: &Table, role: &str) -> bool {
    domain
        .get("default_role")
        .and_then(Item::as_table_like)
        .and_then(|t| t.get("name"))
        .and_then(Item::as_str)
        == Some(role)
}

fn role_mut<'d>(
    domain: &'d mut Table,
    realm: &str,
    role: &str,
) -> Result<&'d mut Table, EditError> {
    if is_default_role(domain, role) {
        return domain
            .get_mut("default_role")
            .and_then(Item::as_table_mut)
            .ok_or_else(|| EditError::Layout(format!("the default role of {realm}")));
    }
    let roles = roles_mut(domain, realm)?;
    let index = find_named(roles, role).ok_or_else(|| unknown_role(realm, role))?;
    Ok(roles.get_mut(index).expect("index found above"))
}

fn new_section(name: &str) -> Table {
    let mut table = Table::new();
    table.insert("name", value(name));
    table.insert("resources", value(Array::new()));
    table.decor_mut().set_prefix("\n");
    table
}

fn add_role(client: &mut Table, realm: &str, role: &str) -> Result<(), EditError> {
    let domain = domain_or_create(client, realm)?;
    if is_default_role(domain, role) || find_named(roles_mut(domain, realm)?, role).is_some() {
        return Err(EditError::RoleExists {
            realm: realm.to_string(),
            role: role.to_string(),
        });
    }
    roles_mut(domain, realm)?.push(new_section(role));
    Ok(())
}

fn rename_role(client: &mut Table, realm: &str, from: &str, to: &str) -> Result<(), EditError> {
    let domain = domain_mut(client, realm)?;
    if is_default_role(domain, to)
        || domain
            .get("roles")
            .and_then(Item::as_array_of_tables)
            .is_some_and(|r| find_named(r, to).is_some())
    {
        return Err(EditError::RoleExists {
            realm: realm.to_string(),
            role: to.to_string(),
        });
    }
    let role = role_mut(domain, realm, from)?;
    set_string(role.get_mut("name"), to);
    if let Some(assignments) = domain.get_mut("role_assignments") {
        let mut list = TableList::of(assignments, "role_assignments")?;
        for index in 0..list.len() {
            let entry = list.get_mut(index).expect("index within len");
            if entry.get("role").and_then(Item::as_str) == Some(from) {
                set_string(entry.get_mut("role"), to);
            }
        }
    }
    Ok(())
}

/// Makes `role` the realm's default. A role of the realm moves into `default_role` with its
/// resources, and the previous default becomes an ordinary role (the two trade places in the
/// file; comments travel with their role); an unknown name becomes a new, empty default.
fn set_default_role(client: &mut Table, realm: &str, role: &str) -> Result<(), EditError> {
    let domain = domain_or_create(client, realm)?;
    if is_default_role(domain, role) {
        return Ok(());
    }
    let layout = || EditError::Layout(format!("the default role of {realm}"));
    let outgoing = match domain.get_mut("default_role") {
        Some(item) => Some(std::mem::take(item.as_table_mut().ok_or_else(layout)?)),
        None => None,
    };
    let chosen = domain
        .get("roles")
        .and_then(Item::as_array_of_tables)
        .and_then(|roles| find_named(roles, role));
    let mut incoming = match chosen {
        Some(index) => roles_mut(domain, realm)?.remove(index),
        None => new_section(role),
    };
    if let Some(mut outgoing) = outgoing {
        let (was_default, was_role) = (outgoing.position(), incoming.position());
        incoming.set_position(was_default);
        outgoing.set_position(was_role);
        let roles = roles_mut(domain, realm)?;
        match chosen {
            Some(index) => roles.insert(index, outgoing),
            None => roles.push(outgoing),
        }
    }
    domain.insert("default_role", Item::Table(incoming));
    Ok(())
}

fn assign(client: &mut Table, realm: &str, subject: &str, role: &str) -> Result<(), EditError> {
    let domain = domain_mut(client, realm)?;
    let known = is_default_role(domain, role)
        || domain
            .get("roles")
            .and_then(Item::as_array_of_tables)
            .is_some_and(|r| find_named(r, role).is_some());
    if !known {
        return Err(unknown_role(realm, role));
    }
    let item = domain
        .entry("role_assignments")
        .or_insert_with(|| Item::ArrayOfTables(ArrayOfTables::new()));
    let mut list = TableList::of(item, "role_assignments")?;
    if let Some(index) = list.position(|t| str_of(t, "subject") == Some(subject)) {
        let entry = list.get_mut(index).expect("index found above");
        set_string(entry.get_mut("role"), role);
        return Ok(());
    }
    let mut entry = InlineTable::new();
    entry.insert("subject", subject.into());
    entry.insert("role", role.into());
    list.push(entry);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = include_str!("../../fixtures/clients.toml");

    fn document(text: &str) -> PolicyDocument {
        PolicyDocument::from_parsed(&toml_edit::Document::parse(text.to_string()).unwrap())
    }

    /// Every region holds exactly what its client prints as: splicing is in use and exact.
    fn assert_regions_exact(document: &PolicyDocument) {
        let regions = document.regions.as_ref().expect("splicing in use");
        let fresh: DocumentMut = document.text.parse().unwrap();
        let clients = fresh
            .get("clients")
            .and_then(Item::as_array_of_tables)
            .unwrap();
        assert_eq!(regions.len(), clients.len());
        for (region, table) in regions.iter().zip(clients.iter()) {
            assert_eq!(&document.text[region.clone()], print_client(table));
        }
        if let Some(doc) = &document.doc {
            assert_eq!(
                document.text,
                doc.to_string(),
                "the spliced text is what the tree prints"
            );
        }
        assert_eq!(document.positions, client_positions(fresh.as_table()));
    }

    #[test]
    fn regions_cover_each_client_exactly_through_edits() {
        let mut doc = document(FIXTURE);
        assert_regions_exact(&doc);
        let edits = [
            Edit::Grant {
                identity: "uri:urn:company:ci".into(),
                resource: "x".into(),
                operation: "y".into(),
            },
            Edit::Assign {
                realm: "uri:urn:mycompany".into(),
                subject: "uri:urn:mycompany:z".into(),
                role: "admin".into(),
            },
            Edit::AddClient {
                identity: "uri:urn:new".into(),
            },
            Edit::Grant {
                identity: "uri:urn:new".into(),
                resource: "r".into(),
                operation: "o".into(),
            },
            Edit::RemoveClient {
                identity: "uri:urn:company:ops".into(),
            },
            Edit::RemoveClient {
                identity: "uri:urn:company:alice".into(),
            },
        ];
        for edit in &edits {
            doc.apply(edit).unwrap();
            assert_regions_exact(&doc);
        }
    }

    #[test]
    fn the_identity_index_follows_renames_adds_and_removals() {
        let mut doc = document(FIXTURE);
        let grant = |identity: &str| Edit::Grant {
            identity: identity.into(),
            resource: "r".into(),
            operation: "o".into(),
        };
        doc.apply(&Edit::RenameClient {
            from: "uri:urn:company:ops".into(),
            to: "uri:urn:company:sre".into(),
        })
        .unwrap();
        assert!(doc.apply(&grant("uri:urn:company:sre")).is_ok());
        assert_eq!(
            doc.apply(&grant("uri:urn:company:ops")),
            Err(EditError::UnknownClient("uri:urn:company:ops".into()))
        );
        doc.apply(&Edit::RemoveClient {
            identity: "uri:urn:company:alice".into(),
        })
        .unwrap();
        doc.apply(&grant("uri:urn:mycompany")).unwrap();
        assert!(doc.text.contains(r#"{ name = "r", operations = ["o"] }"#));
        assert_regions_exact(&doc);
        let loaded = crate::policy::load(&doc.text, 0).unwrap();
        let realm = loaded.policy.client("uri:urn:mycompany").unwrap();
        assert!(
            realm.resource("r").is_some(),
            "the grant landed on the realm, not on its old neighbour"
        );
    }

    #[test]
    fn unusual_layouts_fall_back_to_reprinting() {
        let text = "clients = [{ identifier = { type = \"san_uri\", value = \"uri:urn:a\" }, resources = [] }]\n";
        let mut doc = document(text);
        assert!(doc.regions.is_none());
        let err = doc.apply(&Edit::Grant {
            identity: "uri:urn:a".into(),
            resource: "r".into(),
            operation: "o".into(),
        });
        assert!(
            matches!(
                err,
                Err(EditError::UnknownClient(_)) | Err(EditError::Layout(_))
            ),
            "{err:?}"
        );
        let with_ca = format!("{FIXTURE}\n[cacerts]\ncert_chain = \"x\"\n");
        let mut doc = document(&with_ca);
        assert_regions_exact(&doc);
        doc.apply(&Edit::SetCaChain { pem: "y".into() }).unwrap();
        assert!(doc.text.contains("cert_chain = \"y\""));
        doc.apply(&Edit::Grant {
            identity: "uri:urn:mycompany".into(),
            resource: "r".into(),
            operation: "o".into(),
        })
        .unwrap();
        assert_regions_exact(&doc);
    }

    #[test]
    fn a_comment_stating_a_duration_follows_the_new_value() {
        for (comment, seconds, expected) in [
            (" # 8 hours", 14_400, Some(" # 4 hours")),
            (" # 8 hours", 3_600, Some(" # 1 hour")),
            (" # 30 minutes", 5_400, Some(" # 1 hour 30 minutes")),
            (" #1 hour  ", 172_800, Some(" #2 days  ")),
            (" # 2h", 1_800, Some(" # 30m")),
            (" # 1h30m", 28_800, Some(" # 8h")),
            (" # 1 hour 30 minutes", 600, Some(" # 10 minutes")),
            (" # 2 h", 90, Some(" # 1m30s")),
            (" # 8 hours", 61, Some(" # 1 minute 1 second")),
            (" # 3600", 600, None),
            (" # a working day", 14_400, None),
            (" # 8 hours of work", 14_400, None),
            (" # 8 parsecs", 14_400, None),
            ("", 14_400, None),
        ] {
            assert_eq!(
                restated_comment(comment, seconds).as_deref(),
                expected,
                "{comment:?} → {seconds}"
            );
        }
        let mut doc = document(FIXTURE);
        doc.apply(&Edit::SetIdentityTokens {
            identity: "uri:urn:company:alice".into(),
            enabled: true,
            duration: Some(14_400),
        })
        .unwrap();
        assert!(
            doc.text
                .contains("identity_token_duration = 14400 # 4 hours\n"),
            "{}",
            doc.text
        );
        assert!(!doc.text.contains("# 8 hours"));
        doc.apply(&Edit::SetSetting {
            identity: "uri:urn:company:alice".into(),
            setting: Setting::AuthorizationTokenDuration,
            value: Some(600),
        })
        .unwrap();
        assert!(doc.text.contains("authorization_token_duration = 600\n"));
        // Comments that say something else stay as written.
        doc.apply(&Edit::SetSetting {
            identity: "uri:urn:company:ci:deploy".into(),
            setting: Setting::Delegatable,
            value: Some(1),
        })
        .unwrap();
        assert!(
            doc.text
                .contains("delegatable = true # deploy jobs may not hand")
        );
    }
}
