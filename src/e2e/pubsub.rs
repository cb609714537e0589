//! Publish and subscribe at QoS 0, 1 and 2 with several clients, MQTT
//! 3.1.1 and 5.0, and fan-out to many subscribers.

use super::{Env, ScenarioOutcome, Tls, scenario, step};
use crate::codec::{QoS, Version};
use crate::faults::FaultSet;
use crate::net::{Client, Message};
use std::time::Duration;

/// Receives `n` messages, each within `limit` of the previous one.
pub(crate) async fn recv_n(
    c: &mut Client,
    n: usize,
    limit: Duration,
) -> Result<Vec<Message>, String> {
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        match tokio::time::timeout(limit, c.recv()).await {
            Ok(Ok(m)) => got.push(m),
            Ok(Err(e)) => return Err(format!("after {} of {n} messages: {e}", got.len())),
            Err(_) => {
                return Err(format!(
                    "only {} of {n} messages within {limit:?}",
                    got.len()
                ));
            }
        }
    }
    Ok(got)
}

const PER_QOS: usize = 40;

/// For each version: one subscriber at QoS 2 on `e2e/qos/#`, two
/// publishers sending `PER_QOS` messages at each QoS; every message must
/// arrive with the QoS it was sent with, in order per publisher.
pub async fn qos_levels(tls: &Tls, faults: FaultSet) -> ScenarioOutcome {
    scenario(
        "pub/sub at QoS 0, 1, 2 (3.1.1 and 5.0)",
        tls,
        faults,
        |env| async move {
            let mut total = 0u64;
            for version in [Version::V311, Version::V5] {
                total += qos_round(&env, version).await?;
            }
            Ok((
                total,
                format!("{total} messages delivered at the QoS they were sent with"),
            ))
        },
    )
    .await
}

async fn qos_round(env: &Env, version: Version) -> Result<u64, String> {
    let v = if version == Version::V5 { 5 } else { 4 };
    let mut sub = step(
        "subscriber connect",
        env.connect(&format!("qos-sub-v{v}"), version).await,
    )?;
    step(
        "subscribe",
        sub.subscribe(&[("e2e/qos/#", QoS::ExactlyOnce)]).await,
    )?;
    let pubs = [
        step(
            "publisher connect",
            env.connect(&format!("qos-pub-a-v{v}"), version).await,
        )?,
        step(
            "publisher connect",
            env.connect(&format!("qos-pub-b-v{v}"), version).await,
        )?,
    ];
    let send = async {
        for (p, publ) in pubs.iter().enumerate() {
            for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
                for i in 0..PER_QOS {
                    let topic = format!("e2e/qos/{p}/{}", qos as u8);
                    step(
                        "publish",
                        publ.publish(&topic, format!("{i}"), qos, false).await,
                    )?;
                }
            }
        }
        Ok::<(), String>(())
    };
    let expected = pubs.len() * 3 * PER_QOS;
    let (sent, got) = tokio::join!(send, recv_n(&mut sub, expected, Duration::from_secs(5)));
    sent?;
    let got = got?;
    for (p, _) in pubs.iter().enumerate() {
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            let topic = format!("e2e/qos/{p}/{}", qos as u8);
            let seq: Vec<&Message> = got.iter().filter(|m| m.topic == topic).collect();
            let in_order = seq
                .iter()
                .enumerate()
                .all(|(i, m)| m.payload == i.to_string().as_bytes() && m.qos == qos);
            if seq.len() != PER_QOS || !in_order {
                return Err(format!(
                    "{version}: {topic}: {} messages, in order and at QoS: {in_order}",
                    seq.len()
                ));
            }
        }
    }
    for publ in pubs {
        step("publisher disconnect", publ.disconnect().await)?;
    }
    step("subscriber disconnect", sub.disconnect().await)?;
    Ok(expected as u64)
}

const SUBSCRIBERS: usize = 4;
const FAN_MESSAGES: usize = 100;

/// Four subscribers (both versions, different granted QoS) on one topic,
/// one publisher: every subscriber gets every message (one reference per
/// subscriber in the broker).
pub async fn fan_out(tls: &Tls, faults: FaultSet) -> ScenarioOutcome {
    scenario("fan-out to 4 subscribers", tls, faults, |env| async move {
        let mut subs = Vec::new();
        for i in 0..SUBSCRIBERS {
            let version = if i % 2 == 0 {
                Version::V311
            } else {
                Version::V5
            };
            let qos = [
                QoS::AtMostOnce,
                QoS::AtLeastOnce,
                QoS::ExactlyOnce,
                QoS::AtLeastOnce,
            ][i];
            let s = step(
                "subscriber connect",
                env.connect(&format!("fan-sub-{i}"), version).await,
            )?;
            step("subscribe", s.subscribe(&[("e2e/fan", qos)]).await)?;
            subs.push(s);
        }
        let publ = step(
            "publisher connect",
            env.connect("fan-pub", Version::V5).await,
        )?;
        for i in 0..FAN_MESSAGES {
            let qos = if i % 2 == 0 {
                QoS::AtLeastOnce
            } else {
                QoS::ExactlyOnce
            };
            step(
                "publish",
                publ.publish("e2e/fan", format!("m{i}"), qos, false).await,
            )?;
        }
        let mut total = 0u64;
        for s in &mut subs {
            let got = recv_n(s, FAN_MESSAGES, Duration::from_secs(5)).await?;
            total += got.len() as u64;
        }
        step("publisher disconnect", publ.disconnect().await)?;
        for s in subs {
            step("subscriber disconnect", s.disconnect().await)?;
        }
        Ok((
            total,
            format!("{FAN_MESSAGES} messages to each of {SUBSCRIBERS} subscribers"),
        ))
    })
    .await
}

/// NanoMQ issue 360's command lines over TLS: one subscriber on two
/// overlapping filters (`aaa` and `+`, here under `e2e/ov/`), for both
/// versions; each message arrives exactly once, at the higher of the two
/// granted QoS.
pub async fn overlapping_subscriptions(tls: &Tls, faults: FaultSet) -> ScenarioOutcome {
    scenario(
        "overlapping subscriptions of one client (NanoMQ 360)",
        tls,
        faults,
        |env| async move {
            let mut total = 0u64;
            for version in [Version::V311, Version::V5] {
                let v = if version == Version::V5 { 5 } else { 4 };
                let mut sub = step(
                    "subscriber connect",
                    env.connect(&format!("ov-sub-v{v}"), version).await,
                )?;
                step(
                    "subscribe",
                    sub.subscribe(&[
                        ("e2e/ov/aaa", QoS::AtMostOnce),
                        ("e2e/ov/+", QoS::AtLeastOnce),
                    ])
                    .await,
                )?;
                let publ = step(
                    "publisher connect",
                    env.connect(&format!("ov-pub-v{v}"), version).await,
                )?;
                for i in 0..4 {
                    step(
                        "publish",
                        publ.publish("e2e/ov/aaa", format!("aaa{i}"), QoS::AtLeastOnce, false)
                            .await,
                    )?;
                }
                let got = recv_n(&mut sub, 4, Duration::from_secs(5)).await?;
                for (i, m) in got.iter().enumerate() {
                    if m.payload != format!("aaa{i}") || m.qos != QoS::AtLeastOnce {
                        return Err(format!("{version}: message {i} came as {m:?}"));
                    }
                }
                if let Ok(Ok(m)) =
                    tokio::time::timeout(Duration::from_millis(200), sub.recv()).await
                {
                    return Err(format!("{version}: delivered twice: {m:?}"));
                }
                total += got.len() as u64;
                step("publisher disconnect", publ.disconnect().await)?;
                step("subscriber disconnect", sub.disconnect().await)?;
            }
            Ok((
                total,
                "one delivery per message to a client matching it twice (3.1.1 and 5.0)".into(),
            ))
        },
    )
    .await
}
