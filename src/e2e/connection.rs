//! Per-connection MQTT 5 properties over TLS: the broker's keep-alive cap
//! (Server Keep Alive) and the outbound topic aliases it assigns.

use super::pubsub::recv_n;
use super::{ScenarioOutcome, Tls, scenario_with, step};
use crate::client::ClientConfig;
use crate::codec::{QoS, Version};
use crate::faults::FaultSet;
use crate::net::{Client, NetError};
use std::time::Duration;

/// The cap the scenario's broker runs with, in seconds.
const MAX_KEEP_ALIVE: u16 = 60;

/// Against a broker capping keep-alive at 60 s: an MQTT 5 client asking
/// for 120 s is told 60 s and uses it; a 3.1.1 one is refused. A client
/// offering two topic aliases gets three topics, each twice: the first two
/// topics come aliased (in full once, then by alias only), the third in
/// full, every message with its topic right.
pub async fn keep_alive_and_aliases(tls: &Tls, faults: FaultSet) -> ScenarioOutcome {
    scenario_with(
        "server keep alive and topic aliases (MQTT 5)",
        tls,
        faults,
        |o| o.broker.max_keep_alive = Some(MAX_KEEP_ALIVE),
        |env| async move {
            let asks = |id: &str, version, keep_alive_secs| {
                let mut o = env.client_options(id, version);
                o.mqtt = ClientConfig {
                    keep_alive_secs,
                    ..o.mqtt
                };
                o
            };
            let capped = step(
                "MQTT 5 connect",
                Client::connect(asks("ka-5", Version::V5, 120), env.ledger.clone()).await,
            )?;
            if capped.keep_alive_secs() != MAX_KEEP_ALIVE {
                return Err(format!(
                    "asked for 120 s, uses {} s (Server Keep Alive {MAX_KEEP_ALIVE} expected)",
                    capped.keep_alive_secs()
                ));
            }
            match Client::connect(asks("ka-4", Version::V311, 120), env.ledger.clone()).await {
                Err(NetError::Refused(_)) => {}
                Ok(c) => {
                    step("3.1.1 disconnect", c.disconnect().await)?;
                    return Err("a 3.1.1 client over the keep-alive cap was accepted".into());
                }
                Err(e) => return Err(format!("3.1.1 connect: expected a refusal, got {e}")),
            }
            step("MQTT 5 disconnect", capped.disconnect().await)?;

            let mut o = asks("alias-sub", Version::V5, 60);
            o.mqtt.topic_alias_maximum = 2;
            let mut sub = step(
                "subscriber connect",
                Client::connect(o, env.ledger.clone()).await,
            )?;
            step(
                "subscribe",
                sub.subscribe(&[("e2e/alias/#", QoS::AtLeastOnce)]).await,
            )?;
            let publ = step("publisher connect", env.connect("alias-pub", Version::V5).await)?;
            let topics = ["e2e/alias/a", "e2e/alias/b", "e2e/alias/c"];
            for t in topics.iter().chain(&topics) {
                step("publish", publ.publish(t, *t, QoS::AtLeastOnce, false).await)?;
            }
            let got = recv_n(&mut sub, 6, Duration::from_secs(5)).await?;
            let seen: Vec<(&str, Option<u16>)> =
                got.iter().map(|m| (m.topic.as_str(), m.topic_alias)).collect();
            let want = [
                ("e2e/alias/a", Some(1)),
                ("e2e/alias/b", Some(2)),
                ("e2e/alias/c", None),
                ("e2e/alias/a", Some(1)),
                ("e2e/alias/b", Some(2)),
                ("e2e/alias/c", None),
            ];
            if seen != want || got.iter().any(|m| m.payload != m.topic) {
                return Err(format!("expected {want:?}, got {got:?}"));
            }
            step("publisher disconnect", publ.disconnect().await)?;
            step("subscriber disconnect", sub.disconnect().await)?;
            Ok((
                6,
                format!(
                    "keep-alive 120 s capped to {MAX_KEEP_ALIVE} s (3.1.1 refused); 2 aliases on 3 topics resolved"
                ),
            ))
        },
    )
    .await
}
