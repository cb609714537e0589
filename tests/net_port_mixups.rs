#![cfg(not(feature = "loom"))]
//! The two port mix-ups, on 127.0.0.1: a plain MQTT client on the TLS port
//! and a TLS client on the plain port each get an error that says what
//! happened and what to do, and the broker counts (and logs) the mirror
//! image as a refused connection. The same plain client against mosquitto's
//! TLS port (which closes without a TLS alert) is told to try `-s`.

mod common;

use mqtls_harness::client::ClientConfig;
use mqtls_harness::codec::Version;
use mqtls_harness::ledger::{Ledger, Mode};
use mqtls_harness::net::{Client, ClientOptions, NetError, Server, ServerOptions};
use mqtls_harness::tls::{ClientTlsOptions, ServerTlsOptions};
use std::net::SocketAddr;
use std::time::Duration;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn plain_client(port: u16) -> ClientOptions {
    ClientOptions {
        mqtt: ClientConfig {
            version: Version::V311,
            ..ClientConfig::default()
        },
        connect_timeout: Duration::from_secs(5),
        ..ClientOptions::new("127.0.0.1", port)
    }
}

#[test]
fn each_mixup_is_explained_to_the_client_and_refused_by_the_broker() {
    let pki = certs_gen::Pki::generate(&certs_gen::PkiOptions::default()).unwrap();
    let server_tls = ServerTlsOptions::from_pki(&pki).build().unwrap();
    let client_tls = ClientTlsOptions::from_pki(&pki)
        .with_server_name("127.0.0.1")
        .build()
        .unwrap();
    runtime().block_on(async {
        let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let mut opts = ServerOptions::tls(server_tls, loopback);
        opts.tcp = Some(loopback);
        let server = Server::start(opts, Ledger::new(Mode::Full)).await.unwrap();
        let tls_port = server.tls_addr().unwrap().port();
        let tcp_port = server.tcp_addr().unwrap().port();

        // Plain MQTT on the TLS port: the broker's TLS alert is recognised,
        // not decoded as a malformed MQTT packet.
        let plain_on_tls = Client::connect(plain_client(tls_port), Ledger::new(Mode::Full)).await;
        let err = plain_on_tls
            .err()
            .expect("a plain client on the TLS port connected");
        assert!(
            matches!(&err, NetError::PlainToTlsPort { answer, .. } if answer == "a TLS alert"),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains("speaks TLS") && text.contains("add -s --cafile"),
            "{text}"
        );

        // TLS on the plain port: the broker drops the ClientHello unread.
        let mut tls_opts = plain_client(tcp_port);
        tls_opts.tls = Some(client_tls.clone());
        let tls_on_plain = Client::connect(tls_opts, Ledger::new(Mode::Full)).await;
        let err = tls_on_plain
            .err()
            .expect("a TLS client on the plain port connected");
        assert!(matches!(err, NetError::TlsToPlainPort { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("does not seem to speak TLS") && text.contains("Drop -s and --cafile"),
            "{text}"
        );

        // The right client on each port still works.
        let mut good = plain_client(tls_port);
        good.tls = Some(client_tls);
        for opts in [good, plain_client(tcp_port)] {
            let c = Client::connect(opts, Ledger::new(Mode::Full))
                .await
                .unwrap();
            c.disconnect().await.unwrap();
        }

        let report = server.shutdown().await;
        assert_eq!(report.refused, 2, "{report:?}");
        assert_eq!(report.stats.connections, 2, "{report:?}");
        assert!(report.audit.is_clean(), "{:?}", report.audit.violations);
    });
}

#[test]
fn a_plain_client_on_mosquittos_tls_port_is_told_to_try_tls() {
    let Some([mosquitto]) = common::tools(["mosquitto"]) else {
        return;
    };
    let pki = common::write_pki();
    let (_broker, ports) = common::start_mosquitto(&mosquitto, pki.path());
    runtime().block_on(async {
        let r = Client::connect(plain_client(ports.server_auth), Ledger::new(Mode::Full)).await;
        let err = r
            .err()
            .expect("a plain client on mosquitto's TLS port connected");
        assert!(
            matches!(err, NetError::ClosedBeforeConnack { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("add -s --cafile"), "{err}");
    });
}
