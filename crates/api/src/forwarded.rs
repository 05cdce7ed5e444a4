//! Behind a load balancer: Vault's `x_forwarded_for_*` listener options.
//!
//! With `x_forwarded_for_authorized_addrs` set, a request that comes from one of those
//! addresses (the load balancers) is taken to be from the address its `X-Forwarded-For`
//! header names, counted `x_forwarded_for_hop_skips` entries from the right. Everything that
//! reads the caller's address sees that one: `token_bound_cidrs`, `secret_id_bound_cidrs`,
//! the audit log's `remote_address`, the web UI. A header from any other address is never
//! believed: with `x_forwarded_for_reject_not_authorized` the request is refused, else the
//! header is ignored and the connection's address is the caller's. A request without the
//! header is refused under `x_forwarded_for_reject_not_present`.
//!
//! The order of the checks and the refusals (400 with Vault's texts) are Vault's. Two
//! differences, both refusals where Vault would carry on: the entry the hops lead to must be
//! an IP address (Vault would take any text as the address), and the header must be text.
//! Vault's documentation gives `true` as the default of both reject options (its parser leaves
//! them false when unset); keymint takes the documented, stricter defaults.
//!
//! keymint's probes, `sys/live` and `sys/ready`, are answered whatever the header says: the
//! kubelet connects straight to the pod, sends no header, and those paths read no address.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use keymint_auth::cidr::Cidr;

use crate::error::ApiError;
use crate::tls::Peer;

/// The listener's `x_forwarded_for_*` options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardedFor {
    /// `x_forwarded_for_authorized_addrs`: the addresses whose header is believed. Empty: the
    /// header is never read (the feature is off).
    pub authorized_addrs: Vec<Cidr>,
    /// `x_forwarded_for_hop_skips`: how many entries to skip from the right of the chain (the
    /// proxies of your own in front of keymint that append to it).
    pub hop_skips: usize,
    /// `x_forwarded_for_reject_not_authorized`: refuse a header from any other address
    /// (otherwise it is ignored).
    pub reject_not_authorized: bool,
    /// `x_forwarded_for_reject_not_present`: refuse a request without the header.
    pub reject_not_present: bool,
}

impl ForwardedFor {
    /// Believes the header from `authorized_addrs`, with the documented defaults: no hop
    /// skipped, both reject options on.
    pub fn trusting(authorized_addrs: Vec<Cidr>) -> ForwardedFor {
        ForwardedFor { authorized_addrs, hop_skips: 0, reject_not_authorized: true, reject_not_present: true }
    }

    /// The caller's address for a request from `peer` with `headers`: `Ok(None)` to keep the
    /// connection's, `Ok(Some(ip))` for the forwarded one, `Err(text)` to refuse it (400).
    pub fn client_address(
        &self,
        peer: Option<IpAddr>,
        headers: &HeaderMap,
    ) -> Result<Option<IpAddr>, String> {
        let values: Vec<_> = headers.get_all("x-forwarded-for").iter().collect();
        if values.is_empty() {
            return if self.reject_not_present {
                Err("missing x-forwarded-for header and configured to reject when not present".into())
            } else {
                Ok(None)
            };
        }
        // Vault handles an unreadable connection address as it handles a missing header.
        let Some(peer) = peer else {
            return if self.reject_not_present {
                Err("error parsing client hostport: the connection's address is unknown".into())
            } else {
                Ok(None)
            };
        };
        if !self.authorized_addrs.iter().any(|block| block.contains(peer)) {
            return if self.reject_not_authorized {
                Err("client address not authorized for x-forwarded-for and configured to reject connection"
                    .into())
            } else {
                Ok(None)
            };
        }
        // Several header lines are one chain, in order, as if joined with commas.
        let mut chain = Vec::new();
        for value in values {
            let text =
                value.to_str().map_err(|_| "malformed x-forwarded-for header: not text".to_string())?;
            chain.extend(text.split(',').map(str::trim));
        }
        let Some(index) = chain.len().checked_sub(1 + self.hop_skips) else {
            return Err(format!(
                "malformed x-forwarded-for configuration or request, hops to skip ({}) would skip before \
                 earliest chain link (chain length {})",
                self.hop_skips,
                chain.len()
            ));
        };
        let entry = chain[index];
        parse_entry(entry).map(Some).ok_or_else(|| {
            format!(
                "malformed x-forwarded-for header: {entry:?} (entry {} of the chain) is not an IP address",
                index + 1
            )
        })
    }
}

/// An entry of the chain: an IP address, also as some proxies write it with a port
/// (`192.0.2.7:5071`, `[2001:db8::7]:5071`) or an IPv6 address in brackets.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(with_port) = entry.parse::<SocketAddr>() {
        return Some(with_port.ip());
    }
    entry.strip_prefix('[')?.strip_suffix(']')?.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6)
}

/// Paths answered without looking at the header (see the module docs).
fn is_probe(path: &str) -> bool {
    matches!(path, "/v1/sys/live" | "/v1/sys/ready")
}

/// `app` with the caller's address taken from `X-Forwarded-For` as `config` says; `app`
/// unchanged when no address is authorized (Vault's listener does the same). Wrap the whole
/// app, web UI included, so everything reading `ConnectInfo<Peer>` sees the caller.
pub fn behind_proxies(app: Router, config: ForwardedFor) -> Router {
    if config.authorized_addrs.is_empty() {
        return app;
    }
    app.layer(axum::middleware::from_fn_with_state(Arc::new(config), resolve))
}

async fn resolve(State(config): State<Arc<ForwardedFor>>, mut request: Request, next: Next) -> Response {
    if is_probe(request.uri().path()) {
        return next.run(request).await;
    }
    let peer = request.extensions().get::<ConnectInfo<Peer>>().map(|c| c.0.0);
    match config.client_address(peer.map(|p| p.ip()), request.headers()) {
        Ok(None) => next.run(request).await,
        Ok(Some(client)) => {
            // The connection's port is kept, as Vault does: only the address is forwarded.
            let port = peer.map_or(0, |p| p.port());
            request.extensions_mut().insert(ConnectInfo(Peer(SocketAddr::new(client, port))));
            next.run(request).await
        }
        Err(refusal) => {
            tracing::info!(peer = ?peer, reason = %refusal, "request refused by the x_forwarded_for rules");
            ApiError::BadRequest(refusal).into_response()
        }
    }
}

#[cfg(test)]
mod tests;
