//! The six screens: each owns its state, its actions (as `impl App` blocks) and its drawing.

pub mod activity;
pub mod changes;
pub mod clients;
pub mod delegations;
pub mod roles;
pub mod server;
pub mod tokens;
