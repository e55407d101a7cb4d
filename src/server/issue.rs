//! The server's decisions, apart from HTTP: what an authenticated caller may be issued —
//! identity tokens (first, refreshed, minted by a realm), authorization and stub tokens,
//! signoffs — and what a presented token is worth, or the typed `Refusal` saying why not. Plain
//! functions of one policy snapshot, the root keys and `now`: no clock, network, disk or TLS, so
//! they are tested directly (tests/issuance.rs). The handlers extract, authenticate, call these,
//! record the audit and map a refusal's `Class` to a status.

use crate::policy::{
    self, Client, DEFAULT_AUTHZ_TOKEN_DURATION, DEFAULT_IDENTITY_TOKEN_DURATION, Request,
    Resolution, Resource, RevocationList,
};
use crate::token::{
    self, Actor, AuthzClaims, AuthzVerification, IdentityClaims, IdentityVerification, RootKey,
    ServiceNode, Signer, TokenError, TokenKind, TokenView, VerifiedToken, VerifyingRoots, keys,
};
use crate::wire::{
    IdentityTokenRequest, IdentityTokenResponse, MessageResponse, MintIdentityTokenRequest,
    RefreshIdentityTokenRequest, SignTokenRequest, SignTokenResponse, SignoffInfo, StubRequest,
    StubResponse, TokenRequest, TokenResponse, VerifyServiceChainTokenRequest, VerifyTokenRequest,
};

pub use super::auth::{Caller, Method};
pub use super::state::{PolicySnapshot, SignerConfig};

/// What decides: the policy snapshot a request started with, the keys that sign and verify,
/// and the time.
pub struct Issuer<'a> {
    pub snapshot: &'a PolicySnapshot,
    /// The active root key: every token issued is signed with it.
    pub signing: &'a RootKey,
    /// The keys presented tokens are verified with.
    pub verifier: &'a dyn VerifyingRoots,
    /// Unix seconds: lifetimes count from here and presented tokens are checked against it.
    pub now: i64,
    /// Refreshes in a row an identity token may have (capped at `token::MAX_REFRESH_GENERATIONS`).
    pub max_refresh_generations: u32,
}

/// What was issued, and the reason the audit trail records for it.
#[derive(Debug, Clone)]
pub struct Grant<T> {
    pub reason: String,
    pub body: T,
}

impl<T> Grant<T> {
    fn new(reason: impl Into<String>, body: T) -> Grant<T> {
        Grant {
            reason: reason.into(),
            body,
        }
    }
}

/// A caller whose current identity token was verified for a refresh, and that token.
pub struct Presented {
    pub caller: Caller,
    pub token: std::sync::Arc<VerifiedToken>,
}

/// What kind of refusal a `Refusal` is; the handlers map it to a status (400, 401, 403, 404,
/// 500) and the audit to `deny` (401, 403) or `error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// The request itself is unusable.
    Malformed,
    /// The credential presented is not good enough to act on.
    Unauthenticated,
    /// The caller is known and the answer is no.
    Forbidden,
    /// This server does not offer what was asked.
    NotOffered,
    /// The server failed.
    Internal,
}

/// Why a decision said no. The message is what the caller reads in `response_msg`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the first identity token needs a client certificate (mTLS)")]
    CertificateRequired,
    #[error("Identity mismatch: the certificate is for {certified} but {requested} was requested")]
    RequestedAnother {
        certified: String,
        requested: String,
    },
    #[error(
        "Identity mismatch: the certificate is for {certified} but the token is for {presented}"
    )]
    TokenForAnother {
        certified: String,
        presented: String,
    },
    #[error("{0} is not configured in the policy")]
    NotConfigured(String),
    #[error("identity tokens are not enabled for {0}")]
    IdentityTokensDisabled(String),
    /// The token presented as a credential (for a refresh) is revoked.
    #[error("{0}")]
    RevokedCredential(String),
    /// The token presented for verification or signoff is revoked.
    #[error("{0}")]
    Revoked(String),
    #[error("the current token is not valid: {0}")]
    InvalidCurrentToken(TokenError),
    #[error(
        "refreshing a delegated token is refused: ask the identity that delegated it for a new delegation"
    )]
    DelegatedRefresh,
    #[error("domain-restricted tokens are not refreshed: the realm mints a new one")]
    DomainRestrictedRefresh,
    /// The refresh chain is as long as allowed, or names a key that can no longer vouch for it.
    #[error("{0}")]
    Lineage(TokenError),
    #[error("a domain-restricted identity cannot mint identities")]
    RestrictedMinter,
    #[error("{0} is not a realm: only realms mint identities")]
    NotARealm(String),
    #[error("{0}")]
    InvalidSubject(TokenError),
    #[error("{subject} is outside realm {realm}'s domain; realm subjects are {realm}:NAME")]
    OutsideRealm { subject: String, realm: String },
    #[error("the identity token is restricted to domain {bound}, not {asked}")]
    DomainMismatch { bound: String, asked: String },
    /// The policy's decision, with its reason.
    #[error("{0}")]
    PolicyDenied(String),
    #[error("target_identity: {0}")]
    InvalidTarget(TokenError),
    #[error("prefix_attenuator_key: {0}")]
    InvalidPrefixKey(String),
    /// A token presented for verification or signoff failed.
    #[error("token rejected: {0}")]
    Rejected(TokenError),
    #[error("the policy configures no service chain for {resource} of {subject}")]
    NoServiceChain { subject: String, resource: String },
    #[error("not an authorization token")]
    NotAuthorization,
    #[error("the token grants {subject} nothing on {resource}")]
    NothingGranted { subject: String, resource: String },
    #[error("this server is not configured as a multi-party signer")]
    NotASigner,
    /// Minting failed: a server fault, not a decision.
    #[error("{0}")]
    Mint(TokenError),
}

impl Refusal {
    pub fn class(&self) -> Class {
        use Refusal::*;
        match self {
            CertificateRequired | RevokedCredential(_) => Class::Unauthenticated,
            InvalidCurrentToken(e) if e.is_verdict() => Class::Unauthenticated,
            Rejected(e) if e.is_verdict() => Class::Forbidden,
            InvalidCurrentToken(_)
            | Rejected(_)
            | InvalidSubject(_)
            | InvalidTarget(_)
            | InvalidPrefixKey(_)
            | NoServiceChain { .. }
            | NotAuthorization => Class::Malformed,
            RequestedAnother { .. }
            | TokenForAnother { .. }
            | NotConfigured(_)
            | IdentityTokensDisabled(_)
            | Revoked(_)
            | DelegatedRefresh
            | DomainRestrictedRefresh
            | Lineage(_)
            | RestrictedMinter
            | NotARealm(_)
            | OutsideRealm { .. }
            | DomainMismatch { .. }
            | PolicyDenied(_)
            | NothingGranted { .. } => Class::Forbidden,
            NotASigner => Class::NotOffered,
            Mint(_) => Class::Internal,
        }
    }

    /// A Datalog run limit stopped the evaluation: no verdict, counted apart from denials.
    pub fn run_limit(&self) -> bool {
        matches!(
            self,
            Refusal::InvalidCurrentToken(TokenError::RunLimit(_))
                | Refusal::Rejected(TokenError::RunLimit(_))
        )
    }
}

/// Why a token is refused by the revocation list: one of its blocks, or one of its refresh
/// ancestors, is listed. Revoking a block cuts off every token delegated from it (they carry the
/// block too) and every token refreshed from it (they name it in their lineage). A token that
/// cannot be read at all is left to the checks that explain why.
pub fn revocation_refusal(revoked: &RevocationList, text: &str) -> Option<String> {
    if revoked.is_empty() {
        return None;
    }
    let ids = token::revocation_ids(text).ok()?;
    revoked.refusal(&ids)
}

/// The Unix time `lifetime` seconds after `now`, saturating: policy durations are bounded when
/// the policy is read, and this keeps any other lifetime from wrapping into the past.
pub fn expires_after(now: i64, lifetime: u64) -> i64 {
    now.saturating_add(i64::try_from(lifetime).unwrap_or(i64::MAX))
}

/// The identifier the caller asked for: a real identity string, or nothing (numbers and digit
/// strings are the Hessra CLI's `--ttl` quirk and ask for a lifetime instead).
fn requested(identifier: &Option<serde_json::Value>) -> (Option<String>, Option<u64>) {
    match identifier {
        Some(serde_json::Value::String(text)) => match text.parse::<u64>() {
            Ok(ttl) => (None, Some(ttl)),
            Err(_) => (Some(text.clone()), None),
        },
        Some(serde_json::Value::Number(n)) => (None, n.as_u64()),
        _ => (None, None),
    }
}

/// A lifetime asked for, within a cap: none (or zero) asks for the cap itself.
fn capped(asked: Option<u64>, cap: u64) -> u64 {
    asked.filter(|t| *t > 0).map_or(cap, |t| t.min(cap))
}

/// A resource's configured service chain, as token service nodes.
fn chain_nodes(resource: &Resource) -> Vec<ServiceNode> {
    resource
        .service_chain
        .iter()
        .map(|n| ServiceNode {
            component: n.component.clone(),
            public_key: n.public_key.clone(),
        })
        .collect()
}

/// The configured resource entry a decision rests on (for its chain and signers), and the
/// authorization-token lifetime.
fn grant_details<'p>(
    policy: &'p policy::Policy,
    identity: &str,
    resource: &str,
) -> (Option<&'p Resource>, u64) {
    match policy::resolve(policy, identity) {
        Resolution::Client(client) => (
            client.resource(resource),
            client
                .authorization_token_duration
                .unwrap_or(DEFAULT_AUTHZ_TOKEN_DURATION),
        ),
        Resolution::DomainSubject { realm, role, .. } => (
            role.resources.iter().find(|r| r.name == resource),
            realm
                .authorization_token_duration
                .unwrap_or(DEFAULT_AUTHZ_TOKEN_DURATION),
        ),
        _ => (None, DEFAULT_AUTHZ_TOKEN_DURATION),
    }
}

impl Issuer<'_> {
    fn client(&self, identity: &str) -> Result<&Client, Refusal> {
        self.snapshot
            .client(identity)
            .ok_or_else(|| Refusal::NotConfigured(identity.to_string()))
    }

    /// The realm a caller speaks for: a configured client with a domain, not itself a
    /// domain-restricted identity.
    fn realm_of(&self, caller: &Caller) -> Result<&Client, Refusal> {
        if caller.token_domain.is_some() {
            return Err(Refusal::RestrictedMinter);
        }
        let client = self.client(&caller.identity)?;
        if client.domain.is_none() {
            return Err(Refusal::NotARealm(caller.identity.clone()));
        }
        Ok(client)
    }

    fn refuse_revoked(&self, text: &str) -> Result<(), Refusal> {
        match revocation_refusal(&self.snapshot.revoked, text) {
            Some(message) => Err(Refusal::Revoked(message)),
            None => Ok(()),
        }
    }

    /// An identity token for `client`, within its cap; a refreshed one names the tokens it
    /// descends from.
    fn identity_token(
        &self,
        client: &Client,
        ttl: Option<u64>,
        lineage: &[token::Ancestor],
    ) -> Result<Grant<IdentityTokenResponse>, Refusal> {
        let Some(cap) = client.identity_token_cap() else {
            return Err(Refusal::IdentityTokensDisabled(client.identity.clone()));
        };
        let lifetime = capped(ttl, cap);
        let claims = IdentityClaims {
            subject: client.identity.clone(),
            expires_at: expires_after(self.now, lifetime),
            delegatable: client.delegatable,
            domain: None,
        };
        let minted = token::mint_refreshed_identity(self.signing, &claims, lineage)
            .map_err(Refusal::Mint)?;
        let generation = match lineage.len() {
            0 => String::new(),
            n => format!(", refresh generation {n}"),
        };
        Ok(Grant::new(
            format!("identity token issued for {lifetime} s{generation}"),
            IdentityTokenResponse {
                response_msg: "Identity token issued".into(),
                token: Some(minted),
                expires_in: Some(lifetime),
                identity: Some(client.identity.clone()),
            },
        ))
    }

    /// `/request_identity_token`: a caller's first identity token, for the identity its client
    /// certificate proves (a Bearer token alone cannot ask for one).
    pub fn first_identity_token(
        &self,
        caller: &Caller,
        request: &IdentityTokenRequest,
    ) -> Result<Grant<IdentityTokenResponse>, Refusal> {
        if !caller.method.has_certificate() {
            return Err(Refusal::CertificateRequired);
        }
        let (asked, ttl) = requested(&request.identifier);
        if let Some(asked) = asked.filter(|a| !crate::pki::san_matches(a, &caller.identity)) {
            return Err(Refusal::RequestedAnother {
                certified: caller.identity.clone(),
                requested: asked,
            });
        }
        self.identity_token(self.client(&caller.identity)?, ttl, &[])
    }

    /// `/refresh_identity_token`, first half: the caller, known by the token it presents, which
    /// must be a valid, unrevoked, undelegated, unrestricted identity token — for the same
    /// identity as the client certificate (`certified`), when one was presented.
    pub fn refresh_caller(
        &self,
        certified: Option<&str>,
        current_token: &str,
    ) -> Result<Presented, Refusal> {
        if let Some(message) = revocation_refusal(&self.snapshot.revoked, current_token) {
            return Err(Refusal::RevokedCredential(message));
        }
        let current = token::read_verified(current_token, self.verifier)
            .map_err(Refusal::InvalidCurrentToken)?;
        let view = &current.view;
        if view.delegation_depth() > 0 {
            return Err(Refusal::DelegatedRefresh);
        }
        if view.domain().is_some() {
            return Err(Refusal::DomainRestrictedRefresh);
        }
        let verified = token::verify_identity_parsed(
            &current.biscuit,
            view,
            &IdentityVerification::new(Actor::Bearer, self.now),
        )
        .map_err(Refusal::InvalidCurrentToken)?;
        let caller = Caller {
            identity: verified.subject.clone(),
            method: Method::Bearer,
            token_domain: None,
            revocation_id: verified.revocation_ids.last().cloned(),
        };
        if let Some(certified) = certified
            && certified != caller.identity
        {
            return Err(Refusal::TokenForAnother {
                certified: certified.to_string(),
                presented: caller.identity,
            });
        }
        Ok(Presented {
            caller,
            token: current,
        })
    }

    /// `/refresh_identity_token`, second half: the successor of the presented token. It names
    /// that token and its ancestors, so revoking any of them (or force-retiring the key that
    /// signed one) refuses it too.
    pub fn refreshed_identity_token(
        &self,
        presented: &Presented,
        request: &RefreshIdentityTokenRequest,
    ) -> Result<Grant<IdentityTokenResponse>, Refusal> {
        let max = self
            .max_refresh_generations
            .min(token::MAX_REFRESH_GENERATIONS);
        let lineage = token::refreshed_lineage(&presented.token, self.verifier, max)
            .map_err(Refusal::Lineage)?;
        let (_, ttl) = requested(&request.identifier);
        self.identity_token(self.client(&presented.caller.identity)?, ttl, &lineage)
    }

    /// `/mint_identity_token`: a realm mints a domain-restricted identity token for one of its
    /// subjects, within the realm's identity-token cap.
    pub fn realm_identity_token(
        &self,
        caller: &Caller,
        request: &MintIdentityTokenRequest,
    ) -> Result<Grant<IdentityTokenResponse>, Refusal> {
        let realm = self.realm_of(caller)?;
        token::validate_identity(&request.subject).map_err(Refusal::InvalidSubject)?;
        if !token::is_strict_descendant(&request.subject, &realm.identity) {
            return Err(Refusal::OutsideRealm {
                subject: request.subject.clone(),
                realm: realm.identity.clone(),
            });
        }
        let cap = realm
            .identity_token_duration
            .unwrap_or(DEFAULT_IDENTITY_TOKEN_DURATION);
        let lifetime = capped(request.duration, cap);
        let claims = IdentityClaims {
            subject: request.subject.clone(),
            expires_at: expires_after(self.now, lifetime),
            delegatable: false,
            domain: Some(realm.identity.clone()),
        };
        let minted = token::mint_identity(self.signing, &claims).map_err(Refusal::Mint)?;
        Ok(Grant::new(
            format!("minted {} for {lifetime} s", request.subject),
            IdentityTokenResponse {
                response_msg: "Identity token minted".into(),
                token: Some(minted),
                expires_in: Some(lifetime),
                identity: Some(request.subject.clone()),
            },
        ))
    }

    /// `/request_token`: an authorization token for one operation on one resource, if the
    /// policy allows it, with the resource's service chain and the signoffs it requires.
    pub fn authorization_token(
        &self,
        caller: &Caller,
        request: &TokenRequest,
    ) -> Result<Grant<TokenResponse>, Refusal> {
        let domain = request
            .domain
            .clone()
            .or_else(|| caller.token_domain.clone());
        if let (Some(asked), Some(bound)) = (&request.domain, &caller.token_domain)
            && asked != bound
        {
            return Err(Refusal::DomainMismatch {
                bound: bound.clone(),
                asked: asked.clone(),
            });
        }
        let policy = &self.snapshot.policy;
        let decision = policy::decide(
            policy,
            &Request {
                identity: caller.identity.clone(),
                resource: request.resource.clone(),
                operation: request.operation.clone(),
                domain: domain.clone(),
            },
        );
        if !decision.allowed {
            return Err(Refusal::PolicyDenied(decision.reason));
        }
        let (entry, lifetime) = grant_details(policy, &caller.identity, &request.resource);
        let signers: Vec<&policy::SignerEntry> = entry
            .map(|r| {
                r.signers
                    .iter()
                    .filter(|s| {
                        s.operations.is_empty() || s.operations.contains(&request.operation)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let claims = AuthzClaims {
            subject: caller.identity.clone(),
            resource: request.resource.clone(),
            operation: request.operation.clone(),
            expires_at: expires_after(self.now, lifetime),
            domain,
            prefix_attenuator_key: None,
            service_chain: entry.map(chain_nodes).unwrap_or_default(),
            signers: signers
                .iter()
                .map(|s| Signer {
                    component: s.component.clone(),
                    public_key: s.public_key.clone(),
                })
                .collect(),
        };
        let minted = token::mint_authz(self.signing, &claims).map_err(Refusal::Mint)?;
        let pending: Vec<SignoffInfo> = signers
            .iter()
            .map(|s| SignoffInfo {
                component: s.component.clone(),
                authorization_service: s.authorization_service.clone(),
                public_key: s.public_key.clone(),
            })
            .collect();
        let message = if pending.is_empty() {
            "Token issued"
        } else {
            "Token issued with pending signoffs"
        };
        Ok(Grant::new(
            decision.reason,
            TokenResponse {
                response_msg: message.into(),
                token: Some(minted),
                pending_signoffs: (!pending.is_empty()).then_some(pending),
            },
        ))
    }

    /// `/request_stub`: a realm asks for an authorization token on behalf of one of its
    /// subjects, bound to a prefix attenuator key, within the policy and its lifetime.
    pub fn stub_token(
        &self,
        caller: &Caller,
        request: &StubRequest,
    ) -> Result<Grant<StubResponse>, Refusal> {
        let realm = self.realm_of(caller)?;
        token::validate_identity(&request.target_identity).map_err(Refusal::InvalidTarget)?;
        keys::parse_key_string(&request.prefix_attenuator_key)
            .map_err(|e| Refusal::InvalidPrefixKey(e.to_string()))?;
        let policy = &self.snapshot.policy;
        let decision = policy::decide(
            policy,
            &Request {
                identity: request.target_identity.clone(),
                resource: request.resource.clone(),
                operation: request.operation.clone(),
                domain: Some(realm.identity.clone()),
            },
        );
        if !decision.allowed {
            return Err(Refusal::PolicyDenied(decision.reason));
        }
        let (_, default_lifetime) =
            grant_details(policy, &request.target_identity, &request.resource);
        let lifetime = capped(request.duration, default_lifetime);
        let claims = AuthzClaims {
            subject: request.target_identity.clone(),
            resource: request.resource.clone(),
            operation: request.operation.clone(),
            expires_at: expires_after(self.now, lifetime),
            prefix_attenuator_key: Some(request.prefix_attenuator_key.clone()),
            ..AuthzClaims::default()
        };
        let minted = token::mint_authz(self.signing, &claims).map_err(Refusal::Mint)?;
        Ok(Grant::new(
            decision.reason,
            StubResponse {
                response_msg: "Stub token issued".into(),
                token: Some(minted),
                expires_in: Some(lifetime),
                target_identity: Some(request.target_identity.clone()),
                prefix_attenuator_key: Some(request.prefix_attenuator_key.clone()),
            },
        ))
    }

    /// `/verify_token`: whether an authorization token allows `subject` the operation on the
    /// resource now.
    pub fn verify_token(
        &self,
        request: &VerifyTokenRequest,
    ) -> Result<Grant<MessageResponse>, Refusal> {
        self.refuse_revoked(&request.token)?;
        let check = AuthzVerification::new(
            Some(&request.subject),
            &request.resource,
            &request.operation,
            self.now,
        );
        token::verify_authz(&request.token, self.verifier, &check).map_err(Refusal::Rejected)?;
        Ok(Grant::new(
            format!("token valid for {}", request.subject),
            MessageResponse {
                response_msg: "Token verified successfully".into(),
            },
        ))
    }

    /// `/verify_service_chain_token`: an authorization token checked against the service chain
    /// the policy configures for its subject's resource, up to `component` when given.
    pub fn verify_service_chain(
        &self,
        request: &VerifyServiceChainTokenRequest,
    ) -> Result<Grant<MessageResponse>, Refusal> {
        self.refuse_revoked(&request.token)?;
        // The chain of the client the token is for: two clients may list the same resource
        // with different chains, and the first one listing it is not necessarily this one.
        let chain: Vec<ServiceNode> = self
            .snapshot
            .client(&request.subject)
            .and_then(|client| client.resource(&request.resource))
            .filter(|resource| !resource.service_chain.is_empty())
            .map(chain_nodes)
            .ok_or_else(|| Refusal::NoServiceChain {
                subject: request.subject.clone(),
                resource: request.resource.clone(),
            })?;
        let unverified = token::parse_unverified(&request.token).map_err(Refusal::Rejected)?;
        let view = TokenView::read(&unverified).map_err(Refusal::Rejected)?;
        if view.kind() != TokenKind::Authorization {
            return Err(Refusal::NotAuthorization);
        }
        let operation = view
            .blocks
            .first()
            .and_then(|b| {
                b.shape
                    .rights
                    .iter()
                    .find(|r| r.subject == request.subject && r.resource == request.resource)
            })
            .map(|r| r.operation.clone())
            .ok_or_else(|| Refusal::NothingGranted {
                subject: request.subject.clone(),
                resource: request.resource.clone(),
            })?;
        let mut check = AuthzVerification::new(
            Some(&request.subject),
            &request.resource,
            &operation,
            self.now,
        );
        check.service_chain = Some((&chain, request.component.as_deref()));
        token::verify_authz(&request.token, self.verifier, &check).map_err(Refusal::Rejected)?;
        Ok(Grant::new(
            "service chain verified",
            MessageResponse {
                response_msg: "Token verified successfully".into(),
            },
        ))
    }

    /// `/sign_token`: this server's signoff on a token for the caller, when this server is a
    /// signer and the token is valid but for signoffs still missing.
    pub fn sign_off(
        &self,
        caller: &Caller,
        request: &SignTokenRequest,
        signer: Option<&SignerConfig>,
    ) -> Result<Grant<SignTokenResponse>, Refusal> {
        self.refuse_revoked(&request.token)?;
        let Some(signer) = signer else {
            return Err(Refusal::NotASigner);
        };
        let check = AuthzVerification::new(
            Some(&caller.identity),
            &request.resource,
            &request.operation,
            self.now,
        );
        match token::verify_authz(&request.token, self.verifier, &check) {
            Ok(_) => {}
            Err(TokenError::Denied(denials))
                if denials
                    .iter()
                    .all(|d| matches!(d.reason, token::DenialReason::SignoffMissing { .. })) => {}
            Err(e) => return Err(Refusal::Rejected(e)),
        }
        let signed = token::add_signoff(&request.token, &signer.key, &signer.component)
            .map_err(Refusal::Rejected)?;
        Ok(Grant::new(
            format!("signed off as {}", signer.component),
            SignTokenResponse {
                response_msg: "Token signed successfully".into(),
                signed_token: Some(signed),
            },
        ))
    }
}
