//! Will messages: published when a connection ends without DISCONNECT,
//! discarded on a normal DISCONNECT.

use super::pubsub::recv_n;
use super::{ScenarioOutcome, Tls, scenario, step};
use crate::client::ClientConfig;
use crate::codec::{MqttString, QoS, Version, Will};
use crate::faults::FaultSet;
use crate::net::Client;
use bytes::Bytes;
use std::time::Duration;

fn will(topic: &str, payload: &'static str) -> Result<Will, String> {
    Ok(Will {
        topic: step("will topic", MqttString::new(topic))?,
        payload: Bytes::from_static(payload.as_bytes()),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: Default::default(),
    })
}

/// A watcher subscribes to `e2e/will/#`; one client with a will
/// disconnects normally (no will), another drops its connection (its will
/// arrives), for both versions.
pub async fn abrupt_disconnect(tls: &Tls, faults: FaultSet) -> ScenarioOutcome {
    scenario("will on abrupt disconnect", tls, faults, |env| async move {
        let mut watcher = step(
            "watcher connect",
            env.connect("will-watch", Version::V5).await,
        )?;
        step(
            "subscribe",
            watcher.subscribe(&[("e2e/will/#", QoS::AtLeastOnce)]).await,
        )?;
        let mut total = 0;
        for version in [Version::V311, Version::V5] {
            let v = if version == Version::V5 { 5 } else { 4 };
            let connect = |id: String, w: Will| {
                let mut opts = env.client_options(&id, version);
                opts.mqtt = ClientConfig {
                    will: Some(w),
                    ..opts.mqtt
                };
                Client::connect(opts, env.ledger.clone())
            };
            let polite = step(
                "client connect",
                connect(
                    format!("will-polite-v{v}"),
                    will(&format!("e2e/will/polite{v}"), "should not arrive")?,
                )
                .await,
            )?;
            step("disconnect", polite.disconnect().await)?;
            let dies = step(
                "client connect",
                connect(
                    format!("will-dies-v{v}"),
                    will(&format!("e2e/will/dies{v}"), "gone")?,
                )
                .await,
            )?;
            dies.drop_connection().await;
            drop(dies);
            let got = recv_n(&mut watcher, 1, Duration::from_secs(5)).await?;
            match got.first() {
                Some(m) if m.topic == format!("e2e/will/dies{v}") && m.payload == "gone" => {
                    total += 1
                }
                other => {
                    return Err(format!(
                        "{version}: expected the will of will-dies, got {other:?}"
                    ));
                }
            }
        }
        if let Ok(Ok(m)) = tokio::time::timeout(Duration::from_millis(200), watcher.recv()).await {
            return Err(format!("unexpected message (a discarded will?): {m:?}"));
        }
        step("watcher disconnect", watcher.disconnect().await)?;
        Ok((
            total,
            "wills published on drop, discarded on DISCONNECT (3.1.1 and 5.0)".into(),
        ))
    })
    .await
}
