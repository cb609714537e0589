//! Shared subscriptions over TLS (MQTT 5): two members of a group split a
//! stream, and when one drops mid-stream the deliveries it never
//! acknowledged are handed to the other.

use super::pubsub::recv_n;
use super::{Env, ScenarioOutcome, Tls, scenario, step};
use crate::codec::{QoS, Version};
use crate::faults::FaultSet;
use crate::net::{Client, Message};
use std::collections::BTreeMap;
use std::time::Duration;

const MESSAGES: usize = 20;

/// Members of one group, and a publisher, for one round.
struct Round {
    first: Client,
    second: Client,
    publisher: Client,
    topic: String,
}

async fn round(env: &Env, tag: &str, qos: QoS) -> Result<Round, String> {
    let filter = format!("$share/g-{tag}/e2e/shared/{tag}");
    let first = step(
        "member connect",
        env.connect(&format!("sh-{tag}-a"), Version::V5).await,
    )?;
    step(
        "subscribe",
        first.subscribe(&[(filter.as_str(), qos)]).await,
    )?;
    let second = step(
        "member connect",
        env.connect(&format!("sh-{tag}-b"), Version::V5).await,
    )?;
    step(
        "subscribe",
        second.subscribe(&[(filter.as_str(), qos)]).await,
    )?;
    let publisher = step(
        "publisher connect",
        env.connect(&format!("sh-{tag}-pub"), Version::V5).await,
    )?;
    Ok(Round {
        first,
        second,
        publisher,
        topic: format!("e2e/shared/{tag}"),
    })
}

fn counts<'a>(msgs: impl Iterator<Item = &'a Message>) -> BTreeMap<String, u32> {
    let mut m = BTreeMap::new();
    for msg in msgs {
        *m.entry(String::from_utf8_lossy(&msg.payload).into_owned())
            .or_default() += 1;
    }
    m
}

/// Both members stay: they alternate, every message exactly once.
async fn steady(env: &Env, qos: QoS) -> Result<u64, String> {
    let tag = format!("steady{}", qos as u8);
    let Round {
        mut first,
        mut second,
        publisher,
        topic,
    } = round(env, &tag, qos).await?;
    for i in 0..MESSAGES {
        step(
            "publish",
            publisher.publish(&topic, format!("m{i}"), qos, false).await,
        )?;
    }
    let a = recv_n(&mut first, MESSAGES / 2, Duration::from_secs(5)).await?;
    let b = recv_n(&mut second, MESSAGES / 2, Duration::from_secs(5)).await?;
    let all = counts(a.iter().chain(&b));
    if all.len() != MESSAGES || all.values().any(|n| *n != 1) {
        return Err(format!(
            "QoS {}: not every message exactly once: {all:?}",
            qos as u8
        ));
    }
    for c in [&mut first, &mut second] {
        if let Ok(Ok(m)) = tokio::time::timeout(Duration::from_millis(100), c.recv()).await {
            return Err(format!("QoS {}: one message too many: {m:?}", qos as u8));
        }
    }
    step("publisher disconnect", publisher.disconnect().await)?;
    step("member disconnect", first.disconnect().await)?;
    step("member disconnect", second.disconnect().await)?;
    Ok(MESSAGES as u64)
}

/// The first member drops after five messages, while the stream goes on:
/// nothing is lost, and a message arrives twice only if the departed member
/// had it (it may have gone before its acknowledgement left).
async fn member_drops(env: &Env, qos: QoS) -> Result<u64, String> {
    let tag = format!("drop{}", qos as u8);
    let Round {
        first,
        mut second,
        publisher,
        topic,
    } = round(env, &tag, qos).await?;
    let departed = tokio::spawn(async move {
        let mut first = first;
        let mut got = recv_n(&mut first, 5, Duration::from_secs(5)).await?;
        first.drop_connection().await;
        // What its kernel received before the drop is still to be read.
        while let Ok(Ok(m)) = tokio::time::timeout(Duration::from_secs(1), first.recv()).await {
            got.push(m);
        }
        Ok::<_, String>(got)
    });
    for i in 0..MESSAGES {
        step(
            "publish",
            publisher.publish(&topic, format!("m{i}"), qos, false).await,
        )?;
    }
    let a = departed
        .await
        .map_err(|e| format!("departing member: {e}"))??;
    let had = counts(a.iter());
    let mut b = Vec::new();
    while counts(a.iter().chain(&b)).len() < MESSAGES {
        match tokio::time::timeout(Duration::from_secs(3), second.recv()).await {
            Ok(Ok(m)) => b.push(m),
            _ => {
                let all = counts(a.iter().chain(&b));
                return Err(format!(
                    "QoS {}: lost after the member dropped: got {} of {MESSAGES}: {all:?}",
                    qos as u8,
                    all.len()
                ));
            }
        }
    }
    while let Ok(Ok(m)) = tokio::time::timeout(Duration::from_millis(200), second.recv()).await {
        b.push(m);
    }
    // Each member gets a message at most once; both get it only when it
    // was handed over from the departed one, which had it already.
    for (payload, n) in counts(b.iter()).into_iter().chain(had) {
        if n > 1 {
            return Err(format!(
                "QoS {}: {payload} delivered {n} times to one member",
                qos as u8
            ));
        }
    }
    step("publisher disconnect", publisher.disconnect().await)?;
    step("member disconnect", second.disconnect().await)?;
    Ok(MESSAGES as u64)
}

/// Two members of a group at QoS 1 and 2: a steady stream split between
/// them exactly once, then one member dropping mid-stream with its
/// unacknowledged deliveries handed to the other.
pub async fn split_and_hand_over(tls: &Tls, faults: FaultSet) -> ScenarioOutcome {
    scenario(
        "shared subscription split and hand-over (MQTT 5)",
        tls,
        faults,
        |env| async move {
            let mut total = 0;
            for qos in [QoS::AtLeastOnce, QoS::ExactlyOnce] {
                total += steady(&env, qos).await?;
                total += member_drops(&env, qos).await?;
            }
            Ok((
                total,
                "split exactly once while both stay; nothing lost when one drops (QoS 1 and 2)"
                    .into(),
            ))
        },
    )
    .await
}
