//! What to generate: key algorithm, names and validity.

/// The key algorithm of every key in the PKI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
#[non_exhaustive]
pub enum KeyType {
    /// ECDSA on P-256 with SHA-256: small, fast, accepted everywhere.
    #[default]
    #[value(name = "ecdsa-p256")]
    EcdsaP256,
    /// RSA 2048 with PKCS#1 v1.5 SHA-256 signatures, for peers without ECDSA.
    #[value(name = "rsa2048")]
    Rsa2048,
    /// Ed25519 (needs OpenSSL 1.1.1 or later on the peer).
    #[value(name = "ed25519")]
    Ed25519,
}

impl KeyType {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            KeyType::EcdsaP256 => "ecdsa-p256",
            KeyType::Rsa2048 => "rsa2048",
            KeyType::Ed25519 => "ed25519",
        }
    }
}

/// Parameters of [`crate::Pki::generate`]; [`Default`] gives the usual
/// loopback test PKI.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PkiOptions {
    /// Key algorithm of every key.
    pub key_type: KeyType,
    /// Names of the good server certificate (and of the expired, not yet
    /// valid, no-server-auth and rogue server certificates, so that each of
    /// those fails for its one reason only). Each is an IP address or a DNS
    /// name. Default: `localhost`, `127.0.0.1`, `::1`.
    pub server_names: Vec<String>,
    /// The only name of the wrong-host server certificate. It must differ
    /// from every name in `server_names`.
    pub wrong_host_name: String,
    /// Days the good certificates stay valid, from now.
    pub validity_days: u32,
}

impl Default for PkiOptions {
    fn default() -> Self {
        Self {
            key_type: KeyType::default(),
            server_names: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            wrong_host_name: "wrong-host.invalid".into(),
            validity_days: 365,
        }
    }
}

impl PkiOptions {
    /// Uses `key_type` for every key.
    pub fn with_key_type(mut self, key_type: KeyType) -> Self {
        self.key_type = key_type;
        self
    }

    /// Adds a name to the server certificate, keeping the defaults.
    pub fn with_extra_server_name(mut self, name: impl Into<String>) -> Self {
        self.server_names.push(name.into());
        self
    }

    /// Sets how many days the good certificates stay valid.
    pub fn with_validity_days(mut self, days: u32) -> Self {
        self.validity_days = days;
        self
    }
}
