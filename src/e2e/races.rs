//! Races with the connection's end: a subscribe whose connection drops
//! while it waits for its SUBACK (the seed, NanoMQ 1766), and many short
//! connections ending politely or abruptly.

use super::{ScenarioOutcome, Tls, scenario, step};
use crate::codec::{QoS, Version};
use crate::faults::FaultSet;
use crate::net::NetError;
use std::time::Duration;

const RACES: u32 = 24;

/// The seed's sequence over TLS: subscribe to `topic3`, and drop the
/// connection after a delay that moves across the SUBSCRIBE's write and the
/// SUBACK's arrival. Whichever wins, the subscribe returns (SUBACK or
/// closed) and the ledger must be clean: the parked SUBSCRIBE is released
/// once, by its owner.
pub async fn subscribe_vs_drop(tls: &Tls, faults: FaultSet) -> ScenarioOutcome {
    scenario(
        "subscribe racing a connection drop",
        tls,
        faults,
        |env| async move {
            let (mut acked, mut closed) = (0, 0);
            for i in 0..RACES {
                let version = if i % 2 == 0 {
                    Version::V311
                } else {
                    Version::V5
                };
                let c = step("connect", env.connect(&format!("race-{i}"), version).await)?;
                // Yields, not sleeps: the timer's millisecond is longer than a
                // loopback round trip, and the drop must land on either side of
                // the SUBACK.
                let yields = (i % 6) * 4;
                let drop_later = async {
                    for _ in 0..yields {
                        tokio::task::yield_now().await;
                    }
                    c.drop_connection().await;
                };
                let (r, ()) = tokio::join!(c.subscribe(&[("topic3", QoS::AtMostOnce)]), drop_later);
                match r {
                    Ok(_) => acked += 1,
                    Err(NetError::Closed(_)) => closed += 1,
                    Err(e) => return Err(format!("race {i}: subscribe ended with {e}")),
                }
                drop(c);
            }
            Ok((
                0,
                format!("{RACES} races: {acked} SUBACK first, {closed} closed first"),
            ))
        },
    )
    .await
}

const SHORT: u32 = 60;

/// Many short connections, four at a time: connect, subscribe, publish one
/// QoS 1 message to itself, then disconnect politely or drop.
pub async fn short_connections(tls: &Tls, faults: FaultSet) -> ScenarioOutcome {
    scenario("many short connections", tls, faults, |env| async move {
        let mut received = 0u64;
        for batch in 0..SHORT / 4 {
            let mut tasks = tokio::task::JoinSet::new();
            for j in 0..4 {
                let n = batch * 4 + j;
                let env = env.clone();
                tasks.spawn(async move {
                    let version = if n % 2 == 0 {
                        Version::V5
                    } else {
                        Version::V311
                    };
                    let mut c = step("connect", env.connect(&format!("short-{n}"), version).await)?;
                    let topic = format!("e2e/short/{n}");
                    step(
                        "subscribe",
                        c.subscribe(&[(&topic, QoS::AtLeastOnce)]).await,
                    )?;
                    step(
                        "publish",
                        c.publish(&topic, "ping", QoS::AtLeastOnce, false).await,
                    )?;
                    let got = tokio::time::timeout(Duration::from_secs(5), c.recv()).await;
                    let ok = matches!(got, Ok(Ok(ref m)) if m.payload == "ping");
                    if n % 3 == 0 {
                        c.drop_connection().await;
                    } else {
                        step("disconnect", c.disconnect().await)?;
                    }
                    if ok {
                        Ok::<u64, String>(1)
                    } else {
                        Err(format!("short-{n}: own message not received: {got:?}"))
                    }
                });
            }
            while let Some(r) = tasks.join_next().await {
                received += step("connection task", r)??;
            }
        }
        Ok((
            received,
            format!("{SHORT} connections, a third of them dropped abruptly"),
        ))
    })
    .await
}
