//! The scenarios the schedule engine explores: a deterministic set-up, then
//! callers, pumps (each link's client and broker writer/reader), a timer and
//! a closer as threads, then a final settle and the audit.
//!
//! Each aims at a window that a sequential engine never opens: a call that
//! looks something up or snapshots it under a lock, drops the lock, and acts
//! on it while another thread changes it.

use super::world::{Link, REQUEST_TIMEOUT_MS, Side, World};
use crate::faults::Fault;
use crate::sync::{Arc, thread};
use serde::Serialize;
use std::fmt;

/// One scenario of the schedule engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// A SUBSCRIBE in flight while its SUBACK arrives, its timeout fires
    /// and the connection closes.
    SubscribeClose,
    /// A SUBSCRIBE cancelled by its caller as its SUBACK arrives.
    CancelAck,
    /// A publisher's fan-out while a subscriber unsubscribes.
    FanoutUnsubscribe,
    /// QoS 1 publishes to a persistent subscriber while another connection
    /// takes its session over (MQTT 5, with a will).
    TakeoverPublish,
    /// QoS 1 and 2 publishes whose acknowledgements race the close of the
    /// publisher's connection, its reconnect (the resend) and its timer.
    AckClose,
}

impl Scenario {
    /// Every scenario.
    pub const ALL: [Scenario; 5] = [
        Scenario::SubscribeClose,
        Scenario::CancelAck,
        Scenario::FanoutUnsubscribe,
        Scenario::TakeoverPublish,
        Scenario::AckClose,
    ];

    /// Kebab-case name (regression file, reports).
    pub fn name(self) -> &'static str {
        match self {
            Scenario::SubscribeClose => "subscribe-close",
            Scenario::CancelAck => "cancel-ack",
            Scenario::FanoutUnsubscribe => "fanout-unsubscribe",
            Scenario::TakeoverPublish => "takeover-publish",
            Scenario::AckClose => "ack-close",
        }
    }

    /// The scenario named `name`.
    pub fn from_name(name: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The scenarios whose windows `fault` needs (all of them for the
    /// control run).
    pub fn for_fault(fault: Option<Fault>) -> Vec<Scenario> {
        let Some(f) = fault else {
            return Scenario::ALL.to_vec();
        };
        match f {
            Fault::Nanomq1766
            | Fault::Nanonng83430191f
            | Fault::Nanonng23d0eb290
            | Fault::Nanonng230 => vec![Scenario::SubscribeClose],
            Fault::Nng355 | Fault::Nanonng1578 => vec![Scenario::CancelAck],
            Fault::Nanomq992557ab => vec![Scenario::FanoutUnsubscribe],
            Fault::NanonngF135bbc6b | Fault::Nanomq531 => vec![Scenario::AckClose],
            _ => Vec::new(),
        }
    }

    /// Plays the scenario on `world` (inside a schedule): set-up, threads,
    /// joins, final settle. The caller audits with [`World::finish`].
    pub fn play(self, world: &Arc<World>) {
        match self {
            Scenario::SubscribeClose => subscribe_close(world),
            Scenario::CancelAck => cancel_ack(world),
            Scenario::FanoutUnsubscribe => fanout_unsubscribe(world),
            Scenario::TakeoverPublish => takeover_publish(world),
            Scenario::AckClose => ack_close(world),
        }
        world.settle();
        world.bring_back();
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How many turns each pump takes: a write and a read per turn.
const POLLS: usize = 4;

/// The threads of one scenario, joined before the final settle.
struct Threads(Vec<thread::JoinHandle<()>>);

impl Threads {
    fn new() -> Self {
        Threads(Vec::new())
    }

    fn spawn(&mut self, f: impl FnOnce() + Send + 'static) {
        self.0.push(thread::spawn(f));
    }

    /// Both sides of `link` pumped by their own threads.
    fn pumps(&mut self, world: &Arc<World>, link: &Arc<Link>) {
        for side in [Side::Client, Side::Broker] {
            let (w, l) = (world.clone(), link.clone());
            self.spawn(move || pump(&w, &l, side, POLLS));
        }
    }

    fn join(self) {
        for h in self.0 {
            // A panicking actor is a harness bug shuttle already reported.
            let _ = h.join();
        }
    }
}

/// One side of a link: its writer and its reader, `polls` turns.
fn pump(world: &World, link: &Link, side: Side, polls: usize) {
    for _ in 0..polls {
        let wrote = world.write_once(link, side, false);
        let read = world.read_once(link, side);
        if !wrote && !read {
            thread::yield_now();
        }
    }
}

fn connected(world: &Arc<World>, slot: usize, persistent: bool) -> Arc<Link> {
    let link = world.connect(slot, world.client_config(slot, persistent));
    world.settle();
    link
}

fn subscribe_close(world: &Arc<World>) {
    let l = connected(world, 0, false);
    let mut t = Threads::new();
    let (w, c) = (world.clone(), l.clone());
    t.spawn(move || w.subscribe(&c, "t/#", 1));
    t.pumps(world, &l);
    let w = world.clone();
    t.spawn(move || w.tick(REQUEST_TIMEOUT_MS));
    let (w, c) = (world.clone(), l.clone());
    t.spawn(move || w.close(&c));
    t.join();
}

fn cancel_ack(world: &Arc<World>) {
    let l = connected(world, 0, false);
    let mut t = Threads::new();
    let (w, c) = (world.clone(), l.clone());
    t.spawn(move || {
        w.subscribe(&c, "t/#", 1);
        w.cancel_latest(&c);
    });
    t.pumps(world, &l);
    t.join();
}

fn fanout_unsubscribe(world: &Arc<World>) {
    let sub = connected(world, 0, false);
    world.subscribe(&sub, "t/a", 0);
    world.settle();
    let publisher = connected(world, 1, false);
    let mut t = Threads::new();
    let (w, p) = (world.clone(), publisher.clone());
    t.spawn(move || {
        w.publish(&p, "t/a", 0);
        w.publish(&p, "t/a", 0);
    });
    let (w, s) = (world.clone(), sub.clone());
    t.spawn(move || w.unsubscribe(&s, "t/a"));
    t.pumps(world, &sub);
    t.pumps(world, &publisher);
    t.join();
}

fn takeover_publish(world: &Arc<World>) {
    let mut cfg = world.client_config(0, true);
    cfg.will = Some(crate::codec::Will {
        topic: crate::codec::MqttString::new("w/c0").unwrap_or_default(),
        payload: bytes::Bytes::from_static(b"will-c0"),
        qos: crate::codec::QoS::AtLeastOnce,
        retain: false,
        properties: Default::default(),
    });
    let old = world.connect(0, cfg);
    world.settle();
    world.subscribe(&old, "t/a", 1);
    let watcher = connected(world, 1, true);
    world.subscribe(&watcher, "w/#", 1);
    let publisher = connected(world, 2, false);
    world.settle();
    let mut t = Threads::new();
    let w = world.clone();
    t.spawn(move || {
        let new = w.connect(0, w.client_config(0, true));
        pump(&w, &new, Side::Client, POLLS);
        pump(&w, &new, Side::Broker, POLLS);
    });
    let (w, p) = (world.clone(), publisher.clone());
    t.spawn(move || {
        w.publish(&p, "t/a", 1);
        w.publish(&p, "t/a", 1);
    });
    for l in [&old, &watcher, &publisher] {
        t.pumps(world, l);
    }
    t.join();
}

fn ack_close(world: &Arc<World>) {
    let publisher = connected(world, 0, true);
    let sub = connected(world, 1, true);
    world.subscribe(&sub, "t/#", 2);
    world.settle();
    let mut t = Threads::new();
    let (w, p) = (world.clone(), publisher.clone());
    t.spawn(move || {
        w.publish(&p, "t/a", 1);
        w.publish(&p, "t/b", 2);
    });
    let (w, p) = (world.clone(), publisher.clone());
    t.spawn(move || {
        w.close(&p);
        let back = w.reconnect(&p);
        pump(&w, &back, Side::Client, POLLS);
        pump(&w, &back, Side::Broker, POLLS);
    });
    let w = world.clone();
    t.spawn(move || w.tick(REQUEST_TIMEOUT_MS));
    t.pumps(world, &publisher);
    t.pumps(world, &sub);
    t.join();
}
