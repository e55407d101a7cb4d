//! hessra-console: the operator's console for Hessra-style machine identity, with the token
//! tools, policy model and authorization server it needs to run on a fresh machine.

pub mod audit_chain;
pub mod audit_trail;
pub mod cli;
pub mod client;
pub mod console;
pub mod fleet;
pub mod fsutil;
pub mod gitops;
pub mod keyset;
pub mod pki;
pub mod policy;
pub mod repo;
pub mod review;
pub mod server;
pub mod token;
pub mod token_store;
pub mod wire;
pub mod workspace;
