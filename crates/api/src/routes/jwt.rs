//! JWT/OIDC routes, relative to a JWT mount (`auth/jwt/`).

use super::Route;

pub(crate) const JWT_ROUTES: &[Route] = &[];
