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

/// MQTT 5 Will Delay Interval over TLS: three clients with delayed wills
/// drop their connections at once. `later` (delay 1 s, session 30 s) has
/// its will published once the delay passed; `sooner` (delay 30 s, session
/// 1 s: mosquitto CVE-2019-11778) when its session ends; `back` (delay 1 s)
/// reconnects in time and its will is never published.
pub async fn delayed(tls: &Tls, faults: FaultSet) -> ScenarioOutcome {
    scenario("delayed wills (MQTT 5)", tls, faults, |env| async move {
        let mut watcher = step(
            "watcher connect",
            env.connect("delay-watch", Version::V5).await,
        )?;
        step(
            "subscribe",
            watcher.subscribe(&[("e2e/delay/#", QoS::AtLeastOnce)]).await,
        )?;
        let options = |id: &str, delay: u32, session: u32| -> Result<_, String> {
            let mut w = will(&format!("e2e/delay/{id}"), "gone")?;
            w.properties.will_delay_interval = Some(delay);
            let mut opts = env.client_options(id, Version::V5);
            opts.mqtt = ClientConfig {
                will: Some(w),
                clean_start: false,
                session_expiry_secs: session,
                ..opts.mqtt
            };
            Ok(opts)
        };
        let mut dropped = Vec::new();
        for (id, delay, session) in [("later", 1, 30), ("sooner", 30, 1), ("back", 1, 30)] {
            let c = step(
                "client connect",
                Client::connect(options(id, delay, session)?, env.ledger.clone()).await,
            )?;
            c.drop_connection().await;
            dropped.push(c);
        }
        let started = tokio::time::Instant::now();
        let back_opts = {
            let mut o = options("back", 1, 30)?;
            o.mqtt.will = None;
            o
        };
        let back = step(
            "reconnect in time",
            Client::connect(back_opts, env.ledger.clone()).await,
        )?;
        if let Ok(Ok(m)) = tokio::time::timeout(Duration::from_millis(500), watcher.recv()).await {
            return Err(format!("a will before any delay or expiry passed: {m:?}"));
        }
        let got = recv_n(&mut watcher, 2, Duration::from_secs(3)).await?;
        let mut topics: Vec<&str> = got.iter().map(|m| m.topic.as_str()).collect();
        topics.sort();
        if topics != ["e2e/delay/later", "e2e/delay/sooner"] {
            return Err(format!("expected the wills of later and sooner, got {got:?}"));
        }
        if let Ok(Ok(m)) = tokio::time::timeout(Duration::from_millis(700), watcher.recv()).await {
            return Err(format!("unexpected message (the reconnected client's will?): {m:?}"));
        }
        let waited = started.elapsed();
        drop(dropped);
        step("reconnected disconnect", back.disconnect().await)?;
        step("watcher disconnect", watcher.disconnect().await)?;
        Ok((
            2,
            format!(
                "delayed will after its delay, at session end when sooner, none after a timely reconnect ({waited:.1?})"
            ),
        ))
    })
    .await
}
