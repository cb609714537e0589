//! The test PKI and how it is generated.

use crate::identity::{CaCertificate, Identity};
use crate::profile::{self, Usage, Window};
use crate::{CertsError, KeyType, PkiOptions, key};
use rcgen::{CertificateParams, Issuer, KeyPair, SanType};
use time::{Duration, OffsetDateTime};

/// The longest validity accepted: a century is beyond any test run, and
/// stays well inside what X.509 dates can express.
const MAX_VALIDITY_DAYS: u32 = 36_500;

/// A good test PKI plus the broken material for negative tests.
#[derive(Debug)]
#[non_exhaustive]
pub struct Pki {
    /// The CA that signs every good certificate and the broken ones that are
    /// not about the issuer. Peers trust this one.
    pub ca: CaCertificate,
    /// Server certificate for [`Pki::server_names`], usage server-auth.
    pub server: Identity,
    /// Client certificate for mutual TLS, usage client-auth.
    pub client: Identity,
    /// One certificate per failure a peer must detect.
    pub broken: BrokenPki,
    /// The key algorithm of every key.
    pub key_type: KeyType,
    /// The names the server certificate holds.
    pub server_names: Vec<String>,
    /// The only name the wrong-host certificate holds.
    pub wrong_host_name: String,
}

/// Certificates that a correct peer must reject, each for exactly one reason:
/// apart from what its name says, each is like the good one.
#[derive(Debug)]
#[non_exhaustive]
pub struct BrokenPki {
    /// Signed by the good CA, but its validity ended yesterday.
    pub expired_server: Identity,
    /// Signed by the good CA, but valid only from 30 days from now.
    pub not_yet_valid_server: Identity,
    /// Signed by the good CA, but only for [`Pki::wrong_host_name`].
    pub wrong_host_server: Identity,
    /// Signed by the good CA, but its extended key usage is client-auth only.
    pub no_server_auth_server: Identity,
    /// A CA no peer trusts.
    pub rogue_ca: CaCertificate,
    /// A server certificate for the right names, signed by the rogue CA.
    pub rogue_server: Identity,
    /// A client certificate signed by the rogue CA.
    pub rogue_client: Identity,
}

/// A CA that can still sign: the generator's working state.
struct SigningCa {
    cert: CaCertificate,
    issuer: Issuer<'static, KeyPair>,
}

struct Generator {
    key_type: KeyType,
    server_names: Vec<SanType>,
    good: Window,
}

impl Generator {
    fn ca(&self, what: &'static str, common_name: &str) -> Result<SigningCa, CertsError> {
        let key = key::generate(self.key_type, what)?;
        let params = profile::ca(common_name, self.ca_window());
        let cert = params
            .self_signed(&key)
            .map_err(|source| CertsError::Certificate { what, source })?;
        Ok(SigningCa {
            cert: CaCertificate::new(&cert),
            issuer: Issuer::new(params, key),
        })
    }

    /// The CAs are valid from before the expired leaf was, so that the
    /// expired leaf fails for its own dates and not for its issuer's.
    fn ca_window(&self) -> Window {
        Window {
            not_before: self.good.not_before - Duration::days(60),
            not_after: self.good.not_after,
        }
    }

    fn leaf(
        &self,
        what: &'static str,
        ca: &SigningCa,
        params: CertificateParams,
    ) -> Result<Identity, CertsError> {
        let key = key::generate(self.key_type, what)?;
        let cert = params
            .signed_by(&key, &ca.issuer)
            .map_err(|source| CertsError::Certificate { what, source })?;
        Ok(Identity::new(&cert, &key))
    }

    fn server(
        &self,
        what: &'static str,
        ca: &SigningCa,
        names: Vec<SanType>,
        usage: Usage,
        window: Window,
    ) -> Result<Identity, CertsError> {
        let common_name = names
            .first()
            .map(san_text)
            .unwrap_or_else(|| "mqtls-harness test server".to_owned());
        let params = profile::leaf(&common_name, names, usage, self.key_type, window);
        self.leaf(what, ca, params)
    }

    fn client(
        &self,
        what: &'static str,
        ca: &SigningCa,
        common_name: &str,
    ) -> Result<Identity, CertsError> {
        let params = profile::leaf(
            common_name,
            Vec::new(),
            Usage::ClientAuth,
            self.key_type,
            self.good,
        );
        self.leaf(what, ca, params)
    }
}

fn san_text(san: &SanType) -> String {
    match san {
        SanType::DnsName(n) => n.as_str().to_owned(),
        SanType::IpAddress(ip) => ip.to_string(),
        other => format!("{other:?}"),
    }
}

impl Pki {
    /// Generates a fresh PKI in memory.
    ///
    /// Fails when a name is not a DNS name or an IP address, when the
    /// wrong-host name is also a server name, or when the validity is outside
    /// 1 to 36500 days.
    pub fn generate(options: &PkiOptions) -> Result<Pki, CertsError> {
        if options.validity_days == 0 || options.validity_days > MAX_VALIDITY_DAYS {
            return Err(CertsError::InvalidValidity {
                days: options.validity_days,
            });
        }
        if options.server_names.contains(&options.wrong_host_name) {
            return Err(CertsError::WrongHostIsServerName {
                name: options.wrong_host_name.clone(),
            });
        }
        let server_names = options
            .server_names
            .iter()
            .map(|n| profile::san(n))
            .collect::<Result<Vec<_>, _>>()?;
        let wrong_host = profile::san(&options.wrong_host_name)?;

        // An hour back tolerates a peer whose clock is a little behind.
        let now = OffsetDateTime::now_utc();
        let good = Window {
            not_before: now - Duration::hours(1),
            not_after: now + Duration::days(i64::from(options.validity_days)),
        };
        let g = Generator {
            key_type: options.key_type,
            server_names,
            good,
        };

        let ca = g.ca("CA", "mqtls-harness test CA")?;
        let server = g.server(
            "server",
            &ca,
            g.server_names.clone(),
            Usage::ServerAuth,
            good,
        )?;
        let client = g.client("client", &ca, "mqtls-harness test client")?;

        let expired = Window {
            not_before: now - Duration::days(30),
            not_after: now - Duration::days(1),
        };
        let not_yet_valid = Window {
            not_before: now + Duration::days(30),
            not_after: now + Duration::days(30 + i64::from(options.validity_days)),
        };
        let rogue_ca = g.ca("rogue CA", "mqtls-harness rogue CA (trusted by nobody)")?;
        let broken = BrokenPki {
            expired_server: g.server(
                "expired server",
                &ca,
                g.server_names.clone(),
                Usage::ServerAuth,
                expired,
            )?,
            not_yet_valid_server: g.server(
                "not-yet-valid server",
                &ca,
                g.server_names.clone(),
                Usage::ServerAuth,
                not_yet_valid,
            )?,
            wrong_host_server: g.server(
                "wrong-host server",
                &ca,
                vec![wrong_host],
                Usage::ServerAuth,
                good,
            )?,
            no_server_auth_server: g.server(
                "no-server-auth server",
                &ca,
                g.server_names.clone(),
                Usage::ClientAuth,
                good,
            )?,
            rogue_server: g.server(
                "rogue server",
                &rogue_ca,
                g.server_names.clone(),
                Usage::ServerAuth,
                good,
            )?,
            rogue_client: g.client("rogue client", &rogue_ca, "mqtls-harness rogue client")?,
            rogue_ca: rogue_ca.cert,
        };

        Ok(Pki {
            ca: ca.cert,
            server,
            client,
            broken,
            key_type: options.key_type,
            server_names: options.server_names.clone(),
            wrong_host_name: options.wrong_host_name.clone(),
        })
    }
}
