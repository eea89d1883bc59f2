//! go-plugin's handshake: the magic cookie, app protocol version
//! negotiation, and the line a plugin prints on stdout.

mod config;
mod error;
mod line;
mod negotiate;

pub use config::{COOKIE_MISMATCH_TEXT, HandshakeConfig, TERRAFORM_PROTOCOL_VERSIONS};
pub use error::{AddressError, CookieError, HandshakeError};
pub use line::{CORE_PROTOCOL_VERSION, HandshakeLine, Protocol};
pub use negotiate::{Negotiated, negotiate_version, negotiate_version_from_env};
