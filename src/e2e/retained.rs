//! Retained messages: the store keeps its reference, every delivery on
//! subscribe takes its own (NanoMQ 485 when it does not).

use super::pubsub::recv_n;
use super::{ScenarioOutcome, Tls, scenario, step};
use crate::codec::{QoS, Version};
use crate::faults::FaultSet;
use std::time::Duration;

/// A retained message published at QoS 1, then three subscribers one after
/// the other: each gets it with RETAIN set. Then the retained message is
/// cleared (empty payload) and a fourth subscriber gets nothing.
pub async fn delivery(tls: &Tls, faults: FaultSet) -> ScenarioOutcome {
    scenario(
        "retained delivery to 3 subscribers",
        tls,
        faults,
        |env| async move {
            let publ = step(
                "publisher connect",
                env.connect("ret-pub", Version::V311).await,
            )?;
            step(
                "publish retained",
                publ.publish("e2e/retained", "kept", QoS::AtLeastOnce, true)
                    .await,
            )?;
            let mut total = 0;
            for i in 0..3 {
                let version = if i == 1 { Version::V5 } else { Version::V311 };
                let mut s = step(
                    "subscriber connect",
                    env.connect(&format!("ret-sub-{i}"), version).await,
                )?;
                step(
                    "subscribe",
                    s.subscribe(&[("e2e/retained", QoS::AtLeastOnce)]).await,
                )?;
                let got = recv_n(&mut s, 1, Duration::from_secs(5)).await?;
                if got.first().is_none_or(|m| m.payload != "kept" || !m.retain) {
                    return Err(format!(
                        "subscriber {i} got {got:?}, not the retained message"
                    ));
                }
                total += 1;
                step("subscriber disconnect", s.disconnect().await)?;
            }
            step(
                "clear retained",
                publ.publish("e2e/retained", "", QoS::AtLeastOnce, true)
                    .await,
            )?;
            let mut s = step(
                "subscriber connect",
                env.connect("ret-sub-late", Version::V5).await,
            )?;
            step(
                "subscribe",
                s.subscribe(&[("e2e/retained", QoS::AtLeastOnce)]).await,
            )?;
            if let Ok(Ok(m)) = tokio::time::timeout(Duration::from_millis(300), s.recv()).await {
                return Err(format!("a cleared retained message was delivered: {m:?}"));
            }
            step("subscriber disconnect", s.disconnect().await)?;
            step("publisher disconnect", publ.disconnect().await)?;
            Ok((
                total,
                "delivered to each subscriber with RETAIN set; cleared afterwards".into(),
            ))
        },
    )
    .await
}
