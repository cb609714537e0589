//! Message Expiry Interval over TLS (MQTT 5): what expired while a session
//! was away is not delivered when it comes back, what did not carries the
//! interval reduced by its wait, and an expired retained message is gone.

use super::pubsub::recv_n;
use super::{ScenarioOutcome, Tls, scenario, step};
use crate::client::ClientConfig;
use crate::codec::{MqttString, Publish, QoS, Version};
use crate::faults::FaultSet;
use crate::net::Client;
use bytes::Bytes;
use std::time::Duration;

fn publish(topic: &str, payload: &'static str, qos: QoS, expiry: u32) -> Result<Publish, String> {
    let mut p = Publish::new(
        step("topic", MqttString::new(topic))?,
        Bytes::from_static(payload.as_bytes()),
    );
    p.qos = qos;
    p.properties.message_expiry_interval = Some(expiry);
    Ok(p)
}

/// A persistent subscriber goes away; a 1 s and a 30 s message are
/// published (QoS 1 and 2), plus a retained one of 1 s. After 1.5 s the
/// subscriber is back: it gets only the 30 s message, its interval reduced;
/// a new subscriber to the retained topic gets nothing.
pub async fn offline_and_retained(tls: &Tls, faults: FaultSet) -> ScenarioOutcome {
    scenario("message expiry (MQTT 5)", tls, faults, |env| async move {
        let options = || {
            let mut o = env.client_options("exp-sub", Version::V5);
            o.mqtt = ClientConfig {
                clean_start: false,
                session_expiry_secs: 30,
                ..o.mqtt
            };
            o
        };
        let sub = step(
            "subscriber connect",
            Client::connect(options(), env.ledger.clone()).await,
        )?;
        step(
            "subscribe",
            sub.subscribe(&[("e2e/exp/q/#", QoS::ExactlyOnce)]).await,
        )?;
        sub.drop_connection().await;
        drop(sub);
        let publ = step("publisher connect", env.connect("exp-pub", Version::V5).await)?;
        for (topic, payload, qos, expiry) in [
            ("e2e/exp/q/short", "short", QoS::AtLeastOnce, 1),
            ("e2e/exp/q/long", "long", QoS::ExactlyOnce, 30),
        ] {
            step(
                "publish",
                publ.publish_packet(publish(topic, payload, qos, expiry)?).await,
            )?;
        }
        let mut kept = publish("e2e/exp/r", "retained", QoS::AtLeastOnce, 1)?;
        kept.retain = true;
        step("publish retained", publ.publish_packet(kept).await)?;
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        let mut back = step(
            "subscriber reconnect",
            Client::connect(options(), env.ledger.clone()).await,
        )?;
        let got = recv_n(&mut back, 1, Duration::from_secs(3)).await?;
        let m = &got[0];
        if m.payload != "long" || !m.message_expiry.is_some_and(|e| (1..30).contains(&e)) {
            return Err(format!(
                "expected `long` with its expiry reduced below 30 s, got {m:?}"
            ));
        }
        if let Ok(Ok(m)) = tokio::time::timeout(Duration::from_millis(300), back.recv()).await {
            return Err(format!("an expired message was delivered: {m:?}"));
        }
        let mut late = step("late subscriber", env.connect("exp-late", Version::V5).await)?;
        step(
            "subscribe retained",
            late.subscribe(&[("e2e/exp/r", QoS::AtLeastOnce)]).await,
        )?;
        if let Ok(Ok(m)) = tokio::time::timeout(Duration::from_millis(300), late.recv()).await {
            return Err(format!("an expired retained message was delivered: {m:?}"));
        }
        let left = m.message_expiry.unwrap_or_default();
        step("late disconnect", late.disconnect().await)?;
        step("publisher disconnect", publ.disconnect().await)?;
        step("subscriber disconnect", back.disconnect().await)?;
        Ok((
            1,
            format!(
                "expired queued and retained messages released, not delivered; the other forwarded with {left} s of 30 left"
            ),
        ))
    })
    .await
}
