//! Screen 3, Domains & roles: per realm its roles (the default one marked), assignments, and a
//! subject × resource:operation matrix; assign, unassign, add roles and grant to roles.

use std::collections::BTreeSet;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{ListItem, ListState, Paragraph, Row, Table};

use super::{Cx, Hint, Screen, hints};
use std::any::Any;

use crate::console::app::{App, Level, check_identity, one_word, two_words};
use crate::console::complete::{self, Choices};
use crate::console::keymap::{Action, Scope};
use crate::console::screens::clients::move_cursor;
use crate::console::ui::{list_pane, pane};
use crate::console::unused_marks;
use crate::policy::{Client, Domain, Edit, Policy, Role};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RolesPane {
    #[default]
    Realms,
    Roles,
    Assignments,
}

/// What a Roles prompt asks for.
enum RolesPrompt {
    AddRole { realm: String },
    Assign { realm: String },
    RoleGrant { realm: String, role: String },
    RoleRevoke { realm: String, role: String },
    RenameRole { realm: String, role: String },
}

/// What a Roles confirmation is about.
enum RolesConfirm {
    Unassign { realm: String, subject: String },
    RemoveRole { realm: String, role: String },
}

#[derive(Default)]
pub struct RolesState {
    pub realm: usize,
    pub role: usize,
    pub assignment: usize,
    pub focus: RolesPane,
    /// Narrows the assignments and matrix to matching subjects.
    pub filter: String,
}

impl RolesState {
    pub fn clamp(&mut self, policy: &Policy) {
        let realms = policy.realms().count();
        self.realm = self.realm.min(realms.saturating_sub(1));
        if let Some(domain) = realm(policy, self.realm).and_then(|c| c.domain.as_ref()) {
            self.role = self.role.min(roles(domain).len().saturating_sub(1));
            self.assignment = self
                .assignment
                .min(domain.role_assignments.len().saturating_sub(1));
        }
    }
}

fn realm(policy: &Policy, index: usize) -> Option<&Client> {
    policy.realms().nth(index)
}

/// The default role first, then the others.
fn roles(domain: &Domain) -> Vec<(&Role, bool)> {
    domain
        .default_role
        .iter()
        .map(|r| (r, true))
        .chain(domain.roles.iter().map(|r| (r, false)))
        .collect()
}

impl Screen for RolesState {
    fn title(&self) -> &'static str {
        "Domains & roles"
    }

    fn short_title(&self) -> &'static str {
        "Roles"
    }

    fn scope(&self) -> Scope {
        Scope::Roles
    }

    fn hints(&self) -> Vec<Hint> {
        match self.focus {
            RolesPane::Realms => hints(&[
                Action::FocusNext,
                Action::AddRole,
                Action::Assign,
                Action::Filter,
            ]),
            RolesPane::Roles => hints(&[
                Action::FocusNext,
                Action::RoleGrant,
                Action::RoleRevoke,
                Action::DefaultRole,
                Action::RemoveRole,
            ]),
            RolesPane::Assignments => hints(&[
                Action::FocusNext,
                Action::Assign,
                Action::Unassign,
                Action::Copy,
            ]),
        }
    }

    fn filter(&self) -> Option<&str> {
        Some(&self.filter)
    }

    fn set_filter(&mut self, text: String, _cx: &mut Cx) {
        self.filter = text;
    }

    fn render(&self, frame: &mut Frame, area: Rect, app: &App) {
        render(frame, area, app);
    }

    fn on_action(&mut self, action: Action, cx: &mut Cx) {
        self.act(action, cx);
    }

    fn on_prompt(&mut self, what: &dyn Any, text: &str, cx: &mut Cx) -> Result<(), String> {
        let Some(what) = what.downcast_ref::<RolesPrompt>() else {
            return Ok(());
        };
        let edit = match what {
            RolesPrompt::AddRole { realm } => Edit::AddRole {
                realm: realm.clone(),
                role: one_word(text, "a role name is one word")?,
            },
            RolesPrompt::Assign { realm } => {
                let (subject, role) = two_words(
                    text,
                    "type SUBJECT ROLE, e.g. `uri:urn:mycompany:bob admin`",
                )?;
                check_identity(&subject)?;
                Edit::Assign {
                    realm: realm.clone(),
                    subject,
                    role,
                }
            }
            RolesPrompt::RoleGrant { realm, role } => {
                let (resource, operation) =
                    two_words(text, "type RESOURCE OPERATION, e.g. `api write`")?;
                Edit::RoleGrant {
                    realm: realm.clone(),
                    role: role.clone(),
                    resource,
                    operation,
                }
            }
            RolesPrompt::RoleRevoke { realm, role } => {
                let (resource, operation) =
                    two_words(text, "type RESOURCE OPERATION, e.g. `api write`")?;
                Edit::RoleRevoke {
                    realm: realm.clone(),
                    role: role.clone(),
                    resource,
                    operation,
                }
            }
            RolesPrompt::RenameRole { realm, role } => Edit::RenameRole {
                realm: realm.clone(),
                from: role.clone(),
                to: one_word(text, "a role name is one word")?,
            },
        };
        cx.edit(edit);
        Ok(())
    }

    fn on_confirm(&mut self, what: &dyn Any, cx: &mut Cx) {
        match what.downcast_ref::<RolesConfirm>() {
            Some(RolesConfirm::Unassign { realm, subject }) => cx.edit(Edit::Unassign {
                realm: realm.clone(),
                subject: subject.clone(),
            }),
            Some(RolesConfirm::RemoveRole { realm, role }) => cx.edit(Edit::RemoveRole {
                realm: realm.clone(),
                role: role.clone(),
            }),
            None => {}
        }
    }
}

impl RolesState {
    fn act(&mut self, action: Action, cx: &mut Cx) {
        let Some(loaded) = cx.policy() else { return };
        let policy = &loaded.policy;
        let realm_count = policy.realms().count();
        let Some(client) = realm(policy, self.realm) else {
            cx.flash(
                Level::Info,
                "no realms: a client with a [clients.domain] table is a realm",
            );
            return;
        };
        let realm_id = client.identity.clone();
        let domain = client.domain.as_ref().expect("realms have a domain");
        let role_names: Vec<String> = roles(domain).iter().map(|(r, _)| r.name.clone()).collect();
        let subjects: Vec<String> = domain
            .role_assignments
            .iter()
            .map(|a| a.subject.clone())
            .collect();
        let state = self;
        let (cursor, len) = match state.focus {
            RolesPane::Realms => (&mut state.realm, realm_count),
            RolesPane::Roles => (&mut state.role, role_names.len()),
            RolesPane::Assignments => (&mut state.assignment, subjects.len()),
        };
        if move_cursor(cursor, len, action) {
            if state.focus == RolesPane::Realms {
                state.role = 0;
                state.assignment = 0;
            }
            return;
        }
        match action {
            Action::FocusNext | Action::Right => {
                state.focus = match state.focus {
                    RolesPane::Realms => RolesPane::Roles,
                    RolesPane::Roles => RolesPane::Assignments,
                    RolesPane::Assignments => RolesPane::Realms,
                }
            }
            Action::FocusPrev | Action::Left => {
                state.focus = match state.focus {
                    RolesPane::Realms => RolesPane::Assignments,
                    RolesPane::Roles => RolesPane::Realms,
                    RolesPane::Assignments => RolesPane::Roles,
                }
            }
            // The names other domains use (a role of the same name here is refused).
            Action::AddRole => cx.prompt_choosing(
                RolesPrompt::AddRole {
                    realm: realm_id.clone(),
                },
                &format!("Add a role to {realm_id}"),
                "role name",
                "",
                complete::role_names(policy),
            ),
            Action::Assign => cx.prompt_choosing(
                RolesPrompt::Assign {
                    realm: realm_id.clone(),
                },
                &format!("Assign in {realm_id}"),
                &format!("SUBJECT ROLE (roles: {})", role_names.join(", ")),
                &format!("{realm_id}:"),
                Choices::Words(vec![complete::identities(policy), role_names.clone()]),
            ),
            Action::Unassign => match subjects.get(state.assignment) {
                Some(subject) if state.focus == RolesPane::Assignments => {
                    let subject = subject.clone();
                    cx.confirm(
                        RolesConfirm::Unassign {
                            realm: realm_id.clone(),
                            subject: subject.clone(),
                        },
                        "Unassign",
                        vec![
                            format!("Remove {subject}'s role assignment in {realm_id}?"),
                            "The subject falls back to the default role.".into(),
                        ],
                    );
                }
                _ => cx.flash(Level::Info, "Unassign: select an assignment first (Tab)"),
            },
            Action::RoleGrant => match role_names.get(state.role) {
                Some(role) if state.focus == RolesPane::Roles => {
                    let role = role.clone();
                    cx.prompt_choosing(
                        RolesPrompt::RoleGrant {
                            realm: realm_id.clone(),
                            role: role.clone(),
                        },
                        &format!("Grant to role {role}"),
                        "RESOURCE OPERATION",
                        "",
                        Choices::Grants(complete::policy_grants(policy)),
                    )
                }
                _ => cx.flash(Level::Info, "Grant: select a role first (Tab)"),
            },
            Action::RoleRevoke | Action::RenameRole | Action::RemoveRole | Action::DefaultRole => {
                match role_names.get(state.role) {
                    Some(role) if state.focus == RolesPane::Roles => {
                        let role = role.clone();
                        state.role_action(action, realm_id, role, cx);
                    }
                    _ => cx.flash(Level::Info, "select a role first (Tab to the Roles pane)"),
                }
            }
            Action::Copy => match state.focus {
                RolesPane::Assignments => {
                    if let Some(subject) = subjects.get(state.assignment).cloned() {
                        cx.copy("subject", subject);
                    }
                }
                RolesPane::Roles => {
                    if let Some(role) = role_names.get(state.role).cloned() {
                        cx.copy("role", role);
                    }
                }
                RolesPane::Realms => cx.copy("realm", realm_id),
            },
            _ => {}
        }
    }
}

impl RolesState {
    fn role_action(&mut self, action: Action, realm: String, role: String, cx: &mut Cx) {
        match action {
            // What can be revoked is what the role grants.
            Action::RoleRevoke => {
                let held = cx
                    .policy()
                    .and_then(|l| l.policy.client(&realm))
                    .and_then(|c| c.domain.as_ref())
                    .and_then(|d| roles(d).into_iter().find(|(r, _)| r.name == role))
                    .map(|(r, _)| complete::own_grants(&r.resources))
                    .unwrap_or_default();
                cx.prompt_choosing(
                    RolesPrompt::RoleRevoke {
                        realm,
                        role: role.clone(),
                    },
                    &format!("Revoke from role {role}"),
                    "RESOURCE OPERATION",
                    "",
                    Choices::Grants(held),
                )
            }
            Action::RenameRole => cx.prompt(
                RolesPrompt::RenameRole {
                    realm,
                    role: role.clone(),
                },
                &format!("Rename role {role}"),
                "the new name (its assignments follow)",
                &role,
            ),
            Action::RemoveRole => cx.confirm(
                RolesConfirm::RemoveRole {
                    realm: realm.clone(),
                    role: role.clone(),
                },
                "Remove role",
                vec![
                    format!("Remove role {role} from {realm}?"),
                    "Subjects assigned to it are left with an unknown role, which validation reports.".into(),
                ],
            ),
            Action::DefaultRole => {
                cx.edit(crate::policy::Edit::SetDefaultRole { realm, role });
                // The default is listed first: the selection follows the role.
                self.role = 0;
            }
            _ => {}
        }
    }
}

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let Some(loaded) = app.loaded() else {
        frame.render_widget(
            Paragraph::new("The policy does not parse.").block(pane(app, "Realms", true)),
            area,
        );
        return;
    };
    let policy = &loaded.policy;
    let state = &app.screens.roles;
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(40), Constraint::Percentage(60)]).areas(area);
    let [realms_area, roles_area] =
        Layout::vertical([Constraint::Length(6), Constraint::Min(4)]).areas(left);
    let [assign_area, matrix_area] =
        Layout::vertical([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(right);

    let realm_items: Vec<ListItem> = policy
        .realms()
        .map(|c| ListItem::new(c.identity.clone()))
        .collect();
    let empty = realm_items.is_empty();
    let mut realm_state = ListState::default().with_selected((!empty).then_some(state.realm));
    frame.render_stateful_widget(
        list_pane(app, "Realms", state.focus == RolesPane::Realms, realm_items),
        realms_area,
        &mut realm_state,
    );
    let Some(domain) = realm(policy, state.realm).and_then(|c| c.domain.as_ref()) else {
        frame.render_widget(
            Paragraph::new(
                "No realms. A client with a [clients.domain] table mints identities for its users.",
            )
            .block(pane(app, "Roles", false)),
            roles_area,
        );
        return;
    };

    let realm_id = realm(policy, state.realm).map_or("", |c| c.identity.as_str());
    let all_roles = roles(domain);
    let mut unused_here = 0;
    let role_items: Vec<ListItem> = all_roles
        .iter()
        .map(|(role, default)| {
            let grants: Vec<String> = role
                .resources
                .iter()
                .map(|r| format!("{}:{}", r.name, r.operations.join(",")))
                .collect();
            let unused: Vec<String> = role
                .resources
                .iter()
                .flat_map(|r| r.operations.iter().map(move |op| (r, op)))
                .filter(|(r, op)| {
                    app.unused
                        .role_permission(realm_id, &role.name, &r.name, op)
                        .is_some()
                })
                .map(|(r, op)| format!("{}:{op}", r.name))
                .collect();
            unused_here += unused.len();
            let mark = if *default { " (default)" } else { "" };
            let mut spans = vec![
                Span::styled(format!("{}{mark}", role.name), app.theme.keyword()),
                Span::raw(format!("  {}", grants.join(" "))),
            ];
            if !unused.is_empty() {
                spans.push(Span::styled(
                    format!("  · unused: {}", unused.join(" ")),
                    app.theme.muted(),
                ));
            }
            ListItem::new(Line::from(spans))
        })
        .collect();
    let roles_title = match app.unused.marks() {
        Some(_) => format!("Roles · {unused_here} unused permissions"),
        None => "Roles".to_string(),
    };
    let mut role_state =
        ListState::default().with_selected((state.focus == RolesPane::Roles).then_some(state.role));
    frame.render_stateful_widget(
        list_pane(
            app,
            &roles_title,
            state.focus == RolesPane::Roles,
            role_items,
        ),
        roles_area,
        &mut role_state,
    );

    let needle = state.filter.to_lowercase();
    let assignment_items: Vec<ListItem> = domain
        .role_assignments
        .iter()
        .map(|a| {
            let known = if domain.role(&a.role).is_some() {
                Span::raw("")
            } else {
                Span::styled("  ✗ unknown role", app.theme.error())
            };
            let unused =
                app.unused
                    .assignment(realm_id, &a.subject, &a.role)
                    .map_or(Span::raw(""), |u| {
                        Span::styled(
                            format!("  · {}", unused_marks::tag(u, app.now)),
                            app.theme.muted(),
                        )
                    });
            ListItem::new(Line::from(vec![
                Span::raw(a.subject.clone()),
                Span::styled(format!(" → {}", a.role), app.theme.keyword()),
                known,
                unused,
            ]))
        })
        .collect();
    let mut title = format!("Assignments ({})", domain.role_assignments.len());
    if let Some(summary) = app.unused.summary() {
        title.push_str(&format!(" · {summary}"));
    }
    let mut assign_state = ListState::default().with_selected(
        (state.focus == RolesPane::Assignments && !domain.role_assignments.is_empty())
            .then_some(state.assignment),
    );
    frame.render_stateful_widget(
        list_pane(
            app,
            &title,
            state.focus == RolesPane::Assignments,
            assignment_items,
        ),
        assign_area,
        &mut assign_state,
    );

    render_matrix(frame, matrix_area, app, domain, &needle);
}

/// Subjects (assigned ones plus "anyone else" for the default role) against every
/// resource:operation any role grants.
fn render_matrix(frame: &mut Frame, area: Rect, app: &App, domain: &Domain, needle: &str) {
    let columns: BTreeSet<(String, String)> = roles(domain)
        .iter()
        .flat_map(|(role, _)| role.resources.iter())
        .flat_map(|r| r.operations.iter().map(|op| (r.name.clone(), op.clone())))
        .collect();
    let columns: Vec<(String, String)> = columns.into_iter().collect();
    let mut subjects: Vec<(String, Option<&Role>)> = domain
        .role_assignments
        .iter()
        .filter(|a| needle.is_empty() || a.subject.to_lowercase().contains(needle))
        .map(|a| (short_subject(&a.subject), domain.role(&a.role)))
        .collect();
    subjects.push(("(anyone else)".into(), domain.default_role.as_ref()));
    let header = Row::new(
        std::iter::once("subject".to_string())
            .chain(columns.iter().map(|(r, op)| format!("{r}:{op}")))
            .collect::<Vec<_>>(),
    )
    .style(app.theme.accent());
    let rows: Vec<Row> = subjects
        .iter()
        .map(|(subject, role)| {
            let cells = std::iter::once(subject.clone()).chain(columns.iter().map(|(r, op)| {
                let allowed = role.is_some_and(|role| {
                    role.resources
                        .iter()
                        .any(|res| &res.name == r && res.operations.contains(op))
                });
                if allowed { "✓" } else { "·" }.to_string()
            }));
            Row::new(cells.collect::<Vec<_>>())
        })
        .collect();
    let widths: Vec<Constraint> = std::iter::once(Constraint::Length(18))
        .chain(
            columns
                .iter()
                .map(|(r, op)| Constraint::Length((r.len() + op.len() + 1) as u16)),
        )
        .collect();
    frame.render_widget(
        Table::new(rows, widths).header(header).block(pane(
            app,
            "Who may do what (✓ allowed)",
            false,
        )),
        area,
    );
}

fn short_subject(subject: &str) -> String {
    subject.rsplit(':').next().unwrap_or(subject).to_string()
}
