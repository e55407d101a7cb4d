//! `revocations.toml`: revoked tokens, reviewed and versioned beside `clients.toml`. An entry
//! names a block's revocation id; a token carrying that id in any block is refused, so revoking
//! a block revokes the token it ends and every token delegated from it (a delegated token repeats
//! its parent's blocks, ids included). Ids are compared in canonical form, so either twin of a
//! P-256 signature revokes both. Reads with line:column findings and appends losslessly.

use std::collections::HashMap;

use serde::Serialize;
use toml_edit::{ArrayOfTables, DocumentMut, Item, Table, value};

use super::findings::{Finding, LineIndex, Location};
use crate::token::RevocationIds;

/// The file's name, beside `clients.toml`.
pub const FILE: &str = "revocations.toml";

const KEYS: [&str; 4] = ["id", "reason", "by", "at"];

/// One revoked block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Revoked {
    /// Lowercase hex of the block's revocation id (its signature), canonical: an entry written in
    /// the other form of a P-256 pair (as another tool may show it) is read as this one.
    pub id: String,
    pub reason: String,
    /// Who revoked it.
    pub by: Option<String>,
    /// When, in Unix seconds.
    pub at: Option<i64>,
    /// Where in the file it was read (not carried over the wire).
    #[serde(skip_deserializing)]
    pub location: Location,
}

/// Every revoked id, indexed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RevocationList {
    pub entries: Vec<Revoked>,
    #[serde(skip)]
    index: HashMap<String, usize>,
}

impl RevocationList {
    /// Reads the file; every problem is a finding (the server applies no list with errors).
    pub fn load(text: &str) -> (RevocationList, Vec<Finding>) {
        let lines = LineIndex::new(text);
        let parsed = match toml_edit::Document::parse(text.to_string()) {
            Ok(parsed) => parsed,
            Err(e) => {
                let at = e.span().map(|s| lines.locate(s.start));
                let message = format!("{FILE}: {}", e.message().trim());
                return (
                    RevocationList::default(),
                    vec![Finding::error("syntax", at, message)],
                );
            }
        };
        let mut list = RevocationList::default();
        let mut findings = Vec::new();
        let locate = |span: Option<std::ops::Range<usize>>| span.map(|s| lines.locate(s.start));
        for (key, item) in parsed.as_table().iter() {
            if key != "revoked" {
                let at = locate(parsed.as_table().key(key).and_then(|k| k.span()));
                findings.push(Finding::error(
                    "unknown-key",
                    at,
                    format!("{FILE}: unknown key {key:?} (entries are [[revoked]] tables)"),
                ));
                continue;
            }
            let Some(tables) = item.as_array_of_tables() else {
                findings.push(Finding::error(
                    "wrong-type",
                    locate(item.span()),
                    format!("{FILE}: revoked must be [[revoked]] tables"),
                ));
                continue;
            };
            for table in tables.iter() {
                if let Some(entry) = read_entry(table, &locate, &mut findings) {
                    if let Some(&first) = list.index.get(&entry.id) {
                        findings.push(Finding::warning(
                            "duplicate-revocation",
                            Some(entry.location),
                            format!(
                                "{FILE}: {} is already revoked at line {}",
                                short(&entry.id),
                                list.entries[first].location.line
                            ),
                        ));
                        continue;
                    }
                    list.index.insert(entry.id.clone(), list.entries.len());
                    list.entries.push(entry);
                }
            }
        }
        (list, findings)
    }

    /// A list from entries read elsewhere (e.g. the server's `/revocations`); ids are made
    /// canonical, entries with malformed ids dropped, repeats kept once.
    pub fn from_entries(entries: Vec<Revoked>) -> RevocationList {
        let mut list = RevocationList::default();
        for mut entry in entries {
            let Ok(id) = canonical_id(&entry.id) else {
                continue;
            };
            entry.id = id;
            if !list.index.contains_key(&entry.id) {
                list.index.insert(entry.id.clone(), list.entries.len());
                list.entries.push(entry);
            }
        }
        list
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The first of a token's block ids (canonical, as the token module gives them) that is
    /// revoked: its block index and the entry.
    pub fn first_revoked(&self, ids: &[String]) -> Option<(usize, &Revoked)> {
        ids.iter()
            .enumerate()
            .find_map(|(block, id)| self.index.get(id).map(|&i| (block, &self.entries[i])))
    }

    /// Why this list refuses a token, if it does: one of its blocks is revoked, or one of the
    /// tokens it was refreshed from (the message names which, by generation and id). The one
    /// rule the server and the CLI both apply.
    pub fn refusal(&self, ids: &RevocationIds) -> Option<String> {
        if let Some((block, entry)) = self.first_revoked(&ids.blocks) {
            return Some(format!(
                "token revoked: its block {block} (revocation id {}) was revoked{}",
                short(&entry.id),
                entry.said()
            ));
        }
        ids.lineage.iter().find_map(|ancestor| {
            let entry = &self.entries[*self.index.get(&ancestor.revocation_id)?];
            Some(format!(
                "token revoked: it was refreshed from a revoked token (generation {}, revocation id {}), revoked{}",
                ancestor.generation,
                short(&entry.id),
                entry.said()
            ))
        })
    }
}

impl Revoked {
    /// " by WHO: REASON", as refusals end.
    fn said(&self) -> String {
        let by = self
            .by
            .as_deref()
            .map_or(String::new(), |by| format!(" by {by}"));
        format!("{by}: {}", self.reason)
    }
}

fn read_entry(
    table: &Table,
    locate: &impl Fn(Option<std::ops::Range<usize>>) -> Option<Location>,
    findings: &mut Vec<Finding>,
) -> Option<Revoked> {
    let location = locate(table.span()).unwrap_or_default();
    for (key, _) in table.iter() {
        if !KEYS.contains(&key) {
            findings.push(Finding::error(
                "unknown-key",
                locate(table.key(key).and_then(|k| k.span())),
                format!(
                    "{FILE}: unknown key {key:?} in [[revoked]] ({})",
                    KEYS.join(", ")
                ),
            ));
        }
    }
    let string = |key: &str| table.get(key).and_then(Item::as_str).map(str::to_string);
    let Some(id) = string("id") else {
        findings.push(Finding::error(
            "missing-key",
            Some(location),
            format!("{FILE}: [[revoked]] needs id = \"<hex revocation id>\""),
        ));
        return None;
    };
    let id = match canonical_id(&id) {
        Ok(id) => id,
        Err(why) => {
            let at = locate(table.get("id").and_then(Item::span)).or(Some(location));
            findings.push(Finding::error(
                "malformed-revocation-id",
                at,
                format!("{FILE}: {why}"),
            ));
            return None;
        }
    };
    let reason = string("reason").unwrap_or_default();
    if reason.trim().is_empty() {
        findings.push(Finding::error(
            "missing-key",
            Some(location),
            format!(
                "{FILE}: revoking {} needs a reason (reason = \"...\"): reviewers read it",
                short(&id)
            ),
        ));
    }
    let at = match table.get("at") {
        None => None,
        Some(item) => match item.as_integer() {
            Some(seconds) => Some(seconds),
            None => {
                findings.push(Finding::error(
                    "wrong-type",
                    locate(item.span()).or(Some(location)),
                    format!("{FILE}: at is Unix seconds (an integer)"),
                ));
                None
            }
        },
    };
    Some(Revoked {
        id,
        reason,
        by: string("by"),
        at,
        location,
    })
}

/// A revocation id: lowercase hex of a signature (64 bytes for Ed25519, ~70 for P-256).
pub fn check_id(id: &str) -> Result<(), String> {
    let hex_ok = id
        .chars()
        .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
    if !hex_ok || !id.len().is_multiple_of(2) || !(64..=256).contains(&id.len()) {
        return Err(format!(
            "{:?} is not a revocation id (lowercase hex, 64 to 256 characters; `token inspect` shows them)",
            short(id)
        ));
    }
    Ok(())
}

/// A well-formed id in canonical form (the low-S form of a P-256 signature; any other id as
/// is). Only a crafted signature has a canonical form too short to be an id, and it is refused.
pub fn canonical_id(id: &str) -> Result<String, String> {
    check_id(id)?;
    let canonical = crate::token::canonical_revocation_id_hex(id).unwrap_or_else(|| id.to_string());
    check_id(&canonical)?;
    Ok(canonical)
}

fn short(id: &str) -> String {
    let head: String = id.chars().take(16).collect();
    if id.chars().count() > 16 {
        format!("{head}…")
    } else {
        head
    }
}

/// A revocation to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRevocation {
    pub id: String,
    pub reason: String,
    pub by: Option<String>,
    pub at: i64,
}

/// Appends an entry (its id in canonical form), keeping every other byte of the file (comments
/// included). Refuses a malformed id, an empty reason, an id already revoked (in either form),
/// and a file that does not parse.
pub fn append(text: &str, entry: &NewRevocation) -> Result<String, String> {
    let id = canonical_id(&entry.id)?;
    if entry.reason.trim().is_empty() {
        return Err("a revocation needs a reason: reviewers read it".into());
    }
    let (list, findings) = RevocationList::load(text);
    if let Some(error) = findings.iter().find(|f| f.is_error()) {
        return Err(format!("{FILE} has errors; fix them first: {error}"));
    }
    if list.index.contains_key(&id) {
        return Err(format!("{} is already revoked", short(&entry.id)));
    }
    push_entry(
        text,
        &list,
        &id,
        &entry.reason,
        entry.by.as_deref(),
        Some(entry.at),
    )
}

/// Appends an entry read from another version of the file (a rebase carrying a revocation over),
/// keeping every other byte. An id the file already revokes is left as it is.
pub fn append_entry(text: &str, entry: &Revoked) -> Result<String, String> {
    let (list, findings) = RevocationList::load(text);
    if let Some(error) = findings.iter().find(|f| f.is_error()) {
        return Err(format!("{FILE} has errors; fix them first: {error}"));
    }
    if list.index.contains_key(&entry.id) {
        return Ok(text.to_string());
    }
    push_entry(
        text,
        &list,
        &entry.id,
        &entry.reason,
        entry.by.as_deref(),
        entry.at,
    )
}

/// Removes the entry revoking `id` (canonical), keeping every other byte: other entries and
/// their comments, and the file's opening comments (which the first entry carries). Comments
/// directly above a later entry belong to it and go with it. Refuses a file with errors and an
/// id that is not revoked.
pub fn withdraw(text: &str, id: &str) -> Result<(String, Revoked), String> {
    let (list, findings) = RevocationList::load(text);
    if let Some(error) = findings.iter().find(|f| f.is_error()) {
        return Err(format!("{FILE} has errors; fix them first: {error}"));
    }
    let Some(&position) = list.index.get(id) else {
        return Err(format!("{} is not revoked in {FILE}", short(id)));
    };
    let entry = list.entries[position].clone();
    let mut doc: DocumentMut = text.parse().map_err(|e| format!("{FILE}: {e}"))?;
    let tables = doc
        .get_mut("revoked")
        .and_then(Item::as_array_of_tables_mut)
        .ok_or_else(|| format!("{FILE}: revoked must be [[revoked]] tables"))?;
    // The table's index among [[revoked]] tables (duplicates are skipped in `list`).
    let index = tables
        .iter()
        .position(|table| {
            table
                .get("id")
                .and_then(Item::as_str)
                .and_then(|raw| canonical_id(raw).ok())
                .is_some_and(|canonical| canonical == id)
        })
        .ok_or_else(|| format!("{} is not revoked in {FILE}", short(id)))?;
    let opening = (index == 0).then(|| {
        tables
            .get(0)
            .and_then(|t| t.decor().prefix())
            .and_then(|p| p.as_str())
            .unwrap_or_default()
            .to_string()
    });
    tables.remove(index);
    if let Some(opening) = opening {
        match tables.get_mut(0) {
            Some(next) => {
                let own = next
                    .decor()
                    .prefix()
                    .and_then(|p| p.as_str())
                    .unwrap_or_default()
                    .to_string();
                next.decor_mut().set_prefix(format!("{opening}{own}"));
            }
            None => {
                let trailing = doc.trailing().as_str().unwrap_or_default().to_string();
                doc.set_trailing(format!("{opening}{trailing}"));
            }
        }
    }
    if doc
        .get("revoked")
        .and_then(Item::as_array_of_tables)
        .is_some_and(|t| t.is_empty())
    {
        doc.remove("revoked");
    }
    Ok((doc.to_string(), entry))
}

fn push_entry(
    text: &str,
    list: &RevocationList,
    id: &str,
    reason: &str,
    by: Option<&str>,
    at: Option<i64>,
) -> Result<String, String> {
    let mut doc: DocumentMut = text.parse().map_err(|e| format!("{FILE}: {e}"))?;
    // The first entry takes the file's opening comments as its own, so they stay on top.
    let prefix = if list.is_empty() {
        let mut leading = doc.trailing().as_str().unwrap_or_default().to_string();
        doc.set_trailing("");
        // A last comment line without its newline would swallow the entry's header.
        if !leading.is_empty() && !leading.ends_with('\n') {
            leading.push('\n');
        }
        leading
    } else {
        "\n".to_string()
    };
    let tables = doc
        .entry("revoked")
        .or_insert_with(|| Item::ArrayOfTables(ArrayOfTables::new()))
        .as_array_of_tables_mut()
        .ok_or_else(|| format!("{FILE}: revoked must be [[revoked]] tables"))?;
    let mut table = Table::new();
    table.insert("id", value(id));
    table.insert("reason", value(reason));
    if let Some(by) = by {
        table.insert("by", value(by));
    }
    if let Some(at) = at {
        table.insert("at", value(at));
    }
    table.decor_mut().set_prefix(prefix);
    tables.push(table);
    Ok(doc.to_string())
}

/// What a new revocations file starts with.
pub const HEADER: &str = "# Revoked tokens. Each entry names a block's revocation id (`hessra-console token inspect`\n\
# lists them); the token that block belongs to and every token delegated from it are refused.\n\
# Reviewed and versioned like clients.toml; the server applies it with the policy.\n";

#[cfg(test)]
mod tests {
    use super::*;

    const ID_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const ID_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn entry(id: &str) -> NewRevocation {
        NewRevocation {
            id: id.into(),
            reason: "laptop stolen".into(),
            by: Some("uri:urn:company:ops".into()),
            at: 1_790_000_000,
        }
    }

    #[test]
    fn appends_keep_comments_and_read_back() {
        let text = append(HEADER, &entry(ID_A)).unwrap();
        let text = append(&text, &entry(ID_B)).unwrap();
        assert!(text.starts_with(HEADER));
        let (list, findings) = RevocationList::load(&text);
        assert!(findings.is_empty(), "{findings:?}");
        assert_eq!(list.len(), 2);
        let ids = vec!["00".repeat(32), ID_B.to_string()];
        let (block, revoked) = list.first_revoked(&ids).unwrap();
        assert_eq!(block, 1);
        assert_eq!(revoked.reason, "laptop stolen");
        assert!(list.first_revoked(&["00".repeat(32)]).is_none());
    }

    #[test]
    fn a_refusal_names_the_revoked_block_or_the_revoked_ancestor() {
        let (list, _) = RevocationList::load(&append(HEADER, &entry(ID_A)).unwrap());
        let ancestor = |generation, id: &str| crate::token::Ancestor {
            generation,
            revocation_id: id.into(),
            root_key_id: Some(1),
        };
        let refreshed = RevocationIds {
            blocks: vec!["00".repeat(32)],
            lineage: vec![ancestor(0, &"11".repeat(32)), ancestor(1, ID_A)],
        };
        let why = list.refusal(&refreshed).unwrap();
        assert!(
            why.contains(
                "refreshed from a revoked token (generation 1, revocation id aaaaaaaaaaaaaaaa…)"
            ) && why.ends_with("by uri:urn:company:ops: laptop stolen"),
            "{why}"
        );
        let own = RevocationIds {
            blocks: vec![ID_B.into(), ID_A.into()],
            lineage: Vec::new(),
        };
        let why = list.refusal(&own).unwrap();
        assert!(why.starts_with("token revoked: its block 1 "), "{why}");
        let clean = RevocationIds {
            blocks: vec![ID_B.into()],
            lineage: vec![ancestor(0, ID_B)],
        };
        assert_eq!(list.refusal(&clean), None);
    }

    #[test]
    fn refuses_bad_ids_missing_reasons_and_repeats() {
        assert!(
            append("", &entry("xyz"))
                .unwrap_err()
                .contains("not a revocation id")
        );
        let mut no_reason = entry(ID_A);
        no_reason.reason = " ".into();
        assert!(append("", &no_reason).unwrap_err().contains("reason"));
        let once = append("", &entry(ID_A)).unwrap();
        assert!(
            append(&once, &entry(ID_A))
                .unwrap_err()
                .contains("already revoked")
        );
    }

    #[test]
    fn a_final_comment_without_newline_keeps_the_first_entry_intact() {
        for text in ["#", "# revoked tokens", "# a\n# b", "\n  "] {
            let appended = append(text, &entry(ID_A)).unwrap();
            let (list, findings) = RevocationList::load(&appended);
            assert!(findings.is_empty(), "{text:?} → {appended:?}: {findings:?}");
            assert_eq!(list.len(), 1, "{appended:?}");
            assert!(appended.starts_with(text), "{appended:?}");
        }
    }

    #[test]
    fn withdrawing_the_only_entry_leaves_the_header_and_a_clean_file() {
        let text = append(HEADER, &entry(ID_A)).unwrap();
        let (left, withdrawn) = withdraw(&text, ID_A).unwrap();
        assert_eq!(withdrawn.reason, "laptop stolen");
        assert!(left.starts_with(HEADER), "{left:?}");
        let (list, findings) = RevocationList::load(&left);
        assert!(list.is_empty() && findings.is_empty(), "{left:?}");
        // And it can be revoked again from there.
        let again = append(&left, &entry(ID_A)).unwrap();
        assert_eq!(RevocationList::load(&again).0.len(), 1);
        assert!(
            withdraw(&left, ID_A)
                .unwrap_err()
                .contains("is not revoked")
        );
    }

    #[test]
    fn findings_name_the_line() {
        let text = format!(
            "[[revoked]]\nid = \"{ID_A}\"\nreason = \"x\"\n\n[[revoked]]\nid = \"NOTHEX\"\nreason = \"y\"\nwhen = 3\n"
        );
        let (list, findings) = RevocationList::load(&text);
        assert_eq!(list.len(), 1);
        let all: Vec<String> = findings.iter().map(ToString::to_string).collect();
        assert!(
            all.iter()
                .any(|f| f.starts_with("6:") && f.contains("not a revocation id")),
            "{all:?}"
        );
        assert!(
            all.iter()
                .any(|f| f.starts_with("8:") && f.contains("unknown key \"when\"")),
            "{all:?}"
        );
        let (_, findings) = RevocationList::load("[[revoked]\n");
        assert_eq!(findings[0].code, "syntax");
    }
}
