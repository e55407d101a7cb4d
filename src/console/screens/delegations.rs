//! Screen 2, Delegations: the identity tree (tui-tree-widget) with each node's operations and
//! token lifetime, violations marked by a glyph and a word, a filter that keeps ancestors of
//! matches, and the chain of a loaded token highlighted.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use tui_tree_widget::{Tree, TreeItem, TreeState};

use super::{Cx, Hint, Screen, hints};
use crate::console::app::{App, Level};
use crate::console::keymap::{Action, Scope};
use crate::console::screens::clients::what_can;
use crate::console::ui::{finding_line, pane, selected_marker};
use crate::policy::{DelegationTree, NodeKind, TreeNode};

#[derive(Default)]
pub struct DelegationsState {
    pub filter: String,
    /// In a cell because drawing the tree records its scroll offset.
    pub state: std::cell::RefCell<TreeState<String>>,
    pub match_at: usize,
    /// Identities of a loaded token's chain, root first.
    pub chain: Vec<String>,
    /// The items drawn, with the per-node caches they were made from (computed once per
    /// policy; filters and chain marks reuse them).
    view: TreeView,
    built: bool,
}

/// Levels opened when the tree is first shown (roots and their children).
const OPEN_DEPTH: usize = 2;
/// With a filter, the ancestors of this many matches are opened; `n`/`N` open the rest.
const OPEN_MATCHES: usize = 200;

/// What the tree draws for one policy, filter and token chain: computed off the UI thread after
/// an edit (`TreeView::build` on the worker that read the policy), installed on it in O(1).
#[derive(Debug, Clone, Default)]
pub struct TreeView {
    /// The filter and chain it was built for: installed only if they are still the screen's.
    filter: String,
    chain: Vec<String>,
    lowered: Vec<String>,
    lines: Vec<Line<'static>>,
    items: Vec<TreeItem<'static, String>>,
    matches: Vec<usize>,
}

impl TreeView {
    /// The per-node caches (identity lower-cased for the filter, the drawn line), then the items.
    pub fn build(tree: &DelegationTree, filter: &str, chain: &[String]) -> TreeView {
        let mut view = TreeView {
            filter: filter.to_string(),
            chain: chain.to_vec(),
            lowered: tree
                .nodes
                .iter()
                .map(|n| n.identity.to_lowercase())
                .collect(),
            lines: tree.nodes.iter().map(node_line).collect(),
            ..TreeView::default()
        };
        view.refilter(tree);
        view
    }

    /// The filter or chain changed: the items again, from the caches.
    fn refilter(&mut self, tree: &DelegationTree) {
        let needle = self.filter.to_lowercase();
        let keep = self.keep_set(tree, &needle);
        self.matches = if needle.is_empty() {
            Vec::new()
        } else {
            (0..tree.nodes.len())
                .filter(|&i| self.lowered[i].contains(&needle))
                .collect()
        };
        self.items = tree
            .roots
            .iter()
            .filter_map(|&root| self.item(tree, root, &keep))
            .collect();
    }

    fn item(
        &self,
        tree: &DelegationTree,
        index: usize,
        keep: &[bool],
    ) -> Option<TreeItem<'static, String>> {
        if !keep[index] {
            return None;
        }
        let node = &tree.nodes[index];
        let children: Vec<TreeItem<'static, String>> = node
            .children
            .iter()
            .filter_map(|&child| self.item(tree, child, keep))
            .collect();
        let mut line = self.lines[index].clone();
        if self.chain.contains(&node.identity) {
            line.spans.push(Span::raw("  ◆ token chain"));
        }
        TreeItem::new(node.identity.clone(), line, children).ok()
    }

    fn keep_set(&self, tree: &DelegationTree, needle: &str) -> Vec<bool> {
        if needle.is_empty() {
            return vec![true; tree.nodes.len()];
        }
        let mut keep = vec![false; tree.nodes.len()];
        for i in 0..tree.nodes.len() {
            if !self.lowered[i].contains(needle) {
                continue;
            }
            let mut at = Some(i);
            while let Some(n) = at {
                if keep[n] {
                    break;
                }
                keep[n] = true;
                at = tree.nodes[n].parent;
            }
        }
        keep
    }
}

impl DelegationsState {
    /// The policy changed: recompute the per-node caches, then the items.
    pub fn tree_changed(&mut self, tree: &DelegationTree) {
        let view = TreeView::build(tree, &self.filter, &self.chain);
        self.install(tree, view);
    }

    /// A view built elsewhere (on the worker that read `tree`) for this screen's filter and
    /// chain; built here instead when they changed meanwhile. The old view is dropped off the
    /// UI thread.
    pub fn tree_view_ready(&mut self, tree: &DelegationTree, view: TreeView) {
        if view.filter == self.filter
            && view.chain == self.chain
            && view.lines.len() == tree.nodes.len()
        {
            self.install(tree, view);
        } else {
            crate::console::discard(view);
            self.tree_changed(tree);
        }
    }

    /// The filter or the chain changed: rebuild the items from the caches.
    pub fn rebuild(&mut self, tree: &DelegationTree) {
        if self.view.lines.len() != tree.nodes.len() {
            self.tree_changed(tree);
            return;
        }
        self.view.filter.clone_from(&self.filter);
        self.view.chain.clone_from(&self.chain);
        self.view.refilter(tree);
        self.follow(tree);
    }

    fn install(&mut self, tree: &DelegationTree, view: TreeView) {
        crate::console::discard(std::mem::replace(&mut self.view, view));
        self.follow(tree);
    }

    pub fn items(&self) -> &[TreeItem<'static, String>] {
        &self.view.items
    }

    /// Tree nodes matching the filter, in tree order.
    pub fn matches(&self) -> &[usize] {
        &self.view.matches
    }

    /// The widget state follows new items: the first levels open once, the ancestors of the
    /// first matches open, the first match selected.
    fn follow(&mut self, tree: &DelegationTree) {
        let state = self.state.get_mut();
        if !self.built {
            self.built = true;
            for (i, node) in tree.nodes.iter().enumerate() {
                if node.depth < OPEN_DEPTH && !node.children.is_empty() {
                    state.open(path_to(tree, i));
                }
            }
        }
        for &index in self.view.matches.iter().take(OPEN_MATCHES) {
            let path = path_to(tree, index);
            for depth in 1..path.len() {
                state.open(path[..depth].to_vec());
            }
        }
        if state.selected().is_empty()
            && let Some(first) = tree.roots.first()
        {
            state.select(vec![tree.nodes[*first].identity.clone()]);
        }
        if let Some(&first) = self.view.matches.first() {
            self.match_at = 0;
            state.select(path_to(tree, first));
        }
    }
}

/// Identities from the root down to node `index`: the tree widget's path.
fn path_to(tree: &DelegationTree, index: usize) -> Vec<String> {
    let mut path = Vec::new();
    let mut at = Some(index);
    while let Some(n) = at {
        path.push(tree.nodes[n].identity.clone());
        at = tree.nodes[n].parent;
    }
    path.reverse();
    path
}

/// A node's line: one plain string, so the copies a filter makes are one allocation each.
fn node_line(node: &TreeNode) -> Line<'static> {
    use std::fmt::Write;
    let mut text = node.label.clone();
    match &node.kind {
        NodeKind::Client {
            identity_token_duration,
            delegatable,
            realm,
            ..
        } => {
            for (i, (resource, ops)) in node.permissions.0.iter().enumerate() {
                let ops: Vec<&str> = ops.iter().map(String::as_str).collect();
                let gap = if i == 0 { "  " } else { " " };
                let _ = write!(text, "{gap}{resource}:{}", ops.join(","));
            }
            if let Some(ttl) = identity_token_duration {
                let _ = write!(text, "  ttl {}", crate::policy::duration::format(*ttl));
            }
            if !delegatable {
                text.push_str("  no-delegation");
            }
            if *realm {
                text.push_str("  [realm]");
            }
        }
        NodeKind::DomainSubject { role, explicit, .. } => {
            let how = if *explicit { "" } else { " (default)" };
            let _ = write!(text, "  role {role}{how}");
        }
        NodeKind::Intermediate => text.push_str("  (not configured)"),
    }
    if node.has_errors() {
        text.push_str("  ✗ violation");
    } else if !node.violations.is_empty() {
        text.push_str("  ! warning");
    }
    Line::from(text)
}

impl Screen for DelegationsState {
    fn title(&self) -> &'static str {
        "Delegations"
    }

    fn short_title(&self) -> &'static str {
        "Delegation"
    }

    fn scope(&self) -> Scope {
        Scope::Delegations
    }

    fn hints(&self) -> Vec<Hint> {
        hints(&[
            Action::Filter,
            Action::Select,
            Action::WhatCan,
            Action::Copy,
        ])
    }

    fn filter(&self) -> Option<&str> {
        Some(&self.filter)
    }

    fn set_filter(&mut self, text: String, cx: &mut Cx) {
        self.filter = text;
        self.rebuild(cx.tree());
    }

    fn render(&self, frame: &mut Frame, area: Rect, app: &App) {
        render(frame, area, app);
    }

    fn on_action(&mut self, action: Action, cx: &mut Cx) {
        self.act(action, cx);
    }

    fn match_count(
        &self,
        _policy: Option<&crate::policy::LoadedPolicy>,
        tree: &DelegationTree,
    ) -> Option<(usize, usize)> {
        Some((self.matches().len(), tree.nodes.len()))
    }
}

impl DelegationsState {
    fn act(&mut self, action: Action, cx: &mut Cx) {
        let state = self.state.get_mut();
        match action {
            Action::Up => {
                state.key_up();
            }
            Action::Down => {
                state.key_down();
            }
            Action::Left => {
                state.key_left();
            }
            Action::Right => {
                state.key_right();
            }
            Action::Select => {
                state.toggle_selected();
            }
            Action::Top => {
                state.select_first();
            }
            Action::Bottom => {
                state.select_last();
            }
            Action::PageDown => {
                state.select_relative(|at| at.map_or(0, |i| i + 10));
            }
            Action::PageUp => {
                state.select_relative(|at| at.map_or(0, |i| i.saturating_sub(10)));
            }
            Action::NextMatch | Action::PrevMatch => {
                self.step_match(action == Action::NextMatch, cx)
            }
            Action::Back if !self.filter.is_empty() => {
                self.filter.clear();
                self.rebuild(cx.tree());
            }
            Action::WhatCan => {
                if let (Some(identity), Some(loaded)) = (self.selected_identity(), cx.policy()) {
                    cx.flash(Level::Info, what_can(&loaded.policy, &identity));
                }
            }
            Action::Copy => {
                if let Some(identity) = self.selected_identity() {
                    cx.copy("identity", identity);
                }
            }
            _ => {}
        }
    }

    /// The identity selected in the tree.
    pub fn selected_identity(&self) -> Option<String> {
        self.state.borrow().selected().last().cloned()
    }

    fn step_match(&mut self, forward: bool, cx: &mut Cx) {
        if self.matches().is_empty() {
            cx.flash(Level::Info, "no matches: / sets a filter");
            return;
        }
        let n = self.matches().len();
        self.match_at = if forward {
            (self.match_at + 1) % n
        } else {
            (self.match_at + n - 1) % n
        };
        let path = path_to(cx.tree(), self.matches()[self.match_at]);
        let state = self.state.get_mut();
        for depth in 1..path.len() {
            state.open(path[..depth].to_vec());
        }
        state.select(path);
    }
}

impl App {
    /// Highlights a token's chain (root first) and selects its last identity.
    pub(crate) fn show_chain(&mut self, chain: Vec<String>) {
        self.screens.delegations.chain = chain.clone();
        self.screens.delegations.rebuild(&self.tree);
        let present: Vec<String> = chain
            .iter()
            .filter(|id| self.tree.find(id).is_some())
            .cloned()
            .collect();
        if let Some(last) = present.last() {
            let path: Vec<String> = self
                .tree
                .path_to(last)
                .into_iter()
                .map(|i| self.tree.nodes[i].identity.clone())
                .collect();
            for depth in 1..=path.len() {
                self.screens
                    .delegations
                    .state
                    .get_mut()
                    .open(path[..depth].to_vec());
            }
            self.screens.delegations.state.get_mut().select(path);
        }
    }
}

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let wide = area.width >= 100;
    let [tree_area, detail_area] = if wide {
        Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(area)
    } else {
        Layout::vertical([Constraint::Min(6), Constraint::Length(8)]).areas(area)
    };
    let title = format!("Delegation tree ({} identities)", app.tree.nodes.len());
    match Tree::new(app.screens.delegations.items()) {
        Ok(tree) => {
            let tree = tree
                .block(pane(app, &title, true))
                .highlight_style(app.theme.selected())
                .highlight_symbol(selected_marker());
            let mut state = app.screens.delegations.state.borrow_mut();
            frame.render_stateful_widget(tree, tree_area, &mut state);
        }
        Err(e) => frame.render_widget(
            Paragraph::new(format!("cannot draw the tree: {e}")).block(pane(app, &title, true)),
            tree_area,
        ),
    }
    let selected = app
        .screens
        .delegations
        .state
        .borrow()
        .selected()
        .last()
        .and_then(|id| app.tree.find(id))
        .map(|i| &app.tree.nodes[i]);
    let lines = match selected {
        Some(node) => node_detail(app, node),
        None => vec![Line::from("Nothing selected.")],
    };
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(pane(
            app,
            "What this identity can do",
            false,
        )),
        detail_area,
    );
}

fn node_detail<'a>(app: &App, node: &'a TreeNode) -> Vec<Line<'a>> {
    let mut lines = vec![Line::from(Span::styled(
        node.identity.as_str(),
        app.theme.title(),
    ))];
    let kind = match &node.kind {
        NodeKind::Client { realm: true, .. } => "configured client, realm".to_string(),
        NodeKind::Client { .. } => "configured client".to_string(),
        NodeKind::DomainSubject {
            realm,
            role,
            explicit,
        } => format!(
            "realm subject of {realm}, role {role}{}",
            if *explicit { "" } else { " (default)" }
        ),
        NodeKind::Intermediate => "not configured (connects the tree)".to_string(),
    };
    lines.push(Line::from(Span::styled(kind, app.theme.muted())));
    if node.permissions.0.is_empty() {
        lines.push(Line::from("may do nothing"));
    }
    for (resource, ops) in &node.permissions.0 {
        lines.push(Line::from(vec![
            Span::styled(resource.as_str(), app.theme.keyword()),
            Span::raw(": "),
            Span::raw(ops.iter().cloned().collect::<Vec<_>>().join(", ")),
        ]));
    }
    if app.screens.delegations.chain.contains(&node.identity) {
        lines.push(Line::from(Span::styled(
            "◆ in the loaded token's chain",
            app.theme.accent(),
        )));
    }
    for finding in &node.violations {
        lines.push(finding_line(app, finding));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> DelegationTree {
        let loaded = crate::policy::load(crate::workspace::DEMO_POLICY, 0).unwrap();
        DelegationTree::build(&loaded.policy, &loaded.findings)
    }

    fn shown(state: &DelegationsState) -> Vec<String> {
        fn walk(items: &[TreeItem<'static, String>], out: &mut Vec<String>) {
            for item in items {
                out.push(item.identifier().clone());
                walk(item.children(), out);
            }
        }
        let mut out = Vec::new();
        walk(state.items(), &mut out);
        out
    }

    #[test]
    fn a_view_built_for_the_current_filter_is_installed_as_built() {
        let tree = tree();
        let mut state = DelegationsState {
            filter: "agent".into(),
            ..DelegationsState::default()
        };
        let view = TreeView::build(&tree, "agent", &[]);
        let expected = view.matches.clone();
        assert!(!expected.is_empty(), "the demo has agents");
        state.tree_view_ready(&tree, view);
        assert_eq!(state.matches(), expected.as_slice());
        assert!(shown(&state).iter().all(|id| {
            let i = tree.nodes.iter().position(|n| &n.identity == id).unwrap();
            // kept: a match, or an ancestor of one
            expected
                .iter()
                .any(|&m| path_to(&tree, m).contains(&tree.nodes[i].identity))
        }));
    }

    #[test]
    fn a_view_built_for_a_filter_or_chain_that_changed_meanwhile_is_rebuilt() {
        let tree = tree();
        let mut state = DelegationsState {
            filter: "build".into(),
            ..DelegationsState::default()
        };
        // Built while the filter was "agent" and no token chain was shown.
        state.tree_view_ready(&tree, TreeView::build(&tree, "agent", &[]));
        let fresh = TreeView::build(&tree, "build", &[]);
        assert_eq!(state.matches(), fresh.matches.as_slice());
        assert_ne!(
            fresh.matches,
            TreeView::build(&tree, "agent", &[]).matches,
            "the two filters must differ for this test to mean anything"
        );

        let root = tree.nodes[tree.roots[0]].identity.clone();
        state.filter.clear();
        state.chain = vec![root.clone()];
        state.tree_view_ready(&tree, TreeView::build(&tree, "", &[]));
        let marked = state
            .items()
            .iter()
            .find(|item| item.identifier() == &root)
            .expect("the root is drawn");
        let wanted = TreeView::build(&tree, "", std::slice::from_ref(&root));
        let wanted = wanted
            .items
            .iter()
            .find(|item| item.identifier() == &root)
            .unwrap();
        assert_eq!(
            format!("{marked:?}"),
            format!("{wanted:?}"),
            "the chain mark is drawn"
        );
    }
}
