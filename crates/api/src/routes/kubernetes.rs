//! Kubernetes routes, relative to a Kubernetes mount (`auth/kubernetes/`).

use super::Route;

pub(crate) const KUBERNETES_ROUTES: &[Route] = &[];
