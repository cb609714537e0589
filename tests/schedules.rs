#![cfg(all(feature = "shuttle", not(feature = "loom")))]
//! probe
use mqtls_harness::faults::{Fault, FaultSet};
use mqtls_harness::schedules::{Scenario, Strategy, explore};

#[test]
fn probe() {
    for s in Scenario::ALL {
        let e = explore(s, FaultSet::NONE, Strategy::Random, 1, 300, None);
        eprintln!("{s}: clean {} schedules in {:.2}s: {:?}", e.schedules, e.seconds, e.finding.map(|f| f.summary()));
    }
    for (s, f) in [(Scenario::AckClose, Fault::NanonngF135bbc6b), (Scenario::SubscribeClose, Fault::Nanomq1766), (Scenario::SubscribeClose, Fault::Nanonng83430191f), (Scenario::FanoutUnsubscribe, Fault::Nanomq992557ab), (Scenario::AckClose, Fault::NanonngF135bbc6b)] {
        for strat in [Strategy::Random, Strategy::Pct{depth: 3}] {
            let e = explore(s, FaultSet::only(f), strat, 1, 20000, None);
            eprintln!("{f} {s} {strat}: {} schedules in {:.2}s: {:?}", e.schedules, e.seconds, e.finding.as_ref().map(|f| f.summary()));
        }
    }
}
