//! madsim's own floor for a scenario's traffic: the same number of nodes exchanging the same
//! number of request/reply messages per seed through madsim's `Endpoint`, with no storage, no
//! history, no faults and no checking. `harness bench --floor` alternates it with the real
//! sweep, so their ratio says how much the harness costs above the simulator itself.

use crate::sim::sim_config;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// The traffic of one seed: how many nodes, how many messages (requests plus replies).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Traffic {
    /// Nodes, two of them servers (the broker's and the store's places).
    pub nodes: u32,
    /// Messages per seed, requests and replies together.
    pub messages: u64,
}

/// The one tag the floor's messages travel on.
const TAG: u64 = 0x0066_6c6f_6f72;
/// A message body about the size of a small produce request.
const BODY_BYTES: usize = 96;

fn addr(host: u32) -> SocketAddr {
    let [_, a, b, c] = (0x0a00_0000 | host).to_be_bytes();
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, a, b, c)), 9000)
}

/// What a floor sweep did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FloorRound {
    /// Seeds run.
    pub seeds: u64,
    /// Messages carried, requests and replies, over all seeds.
    pub messages: u64,
    /// Wall seconds it took.
    pub wall_secs: f64,
}

/// Runs `seeds` of the floor program on `jobs` threads.
pub fn floor_sweep(traffic: Traffic, seeds: Range<u64>, jobs: usize) -> FloorRound {
    let started = Instant::now();
    let next = AtomicU64::new(seeds.start);
    let messages = AtomicU64::new(0);
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= seeds.end {
                    return;
                }
                messages.fetch_add(floor_seed(traffic, seed), Ordering::Relaxed);
            });
        }
    });
    FloorRound {
        seeds: seeds.end.saturating_sub(seeds.start),
        messages: messages.load(Ordering::Relaxed),
        wall_secs: started.elapsed().as_secs_f64().max(1e-9),
    }
}

/// One seed, as `sim::run` makes one: a fresh thread and a fresh runtime with the same
/// configuration, so thread and runtime creation are in the floor too. Returns the messages
/// it carried.
fn floor_seed(traffic: Traffic, seed: u64) -> u64 {
    std::thread::spawn(move || {
        let runtime = madsim::runtime::Runtime::with_seed_and_config(seed, sim_config());
        runtime.block_on(exchange(traffic))
    })
    .join()
    .expect("the floor program does not panic")
}

/// Two servers answer every request; the other nodes are clients sharing the round trips,
/// each client alternating between the two servers. Returns the messages carried.
async fn exchange(traffic: Traffic) -> u64 {
    let handle = madsim::runtime::Handle::current();
    let servers = [addr(1), addr(2)];
    for server in servers {
        handle
            .create_node()
            .ip(server.ip())
            .build()
            .spawn(async move {
                let ep = madsim::net::Endpoint::bind(server).await.expect("bind");
                while let Ok((body, from)) = ep.recv_from_raw(TAG).await {
                    let _ = ep.send_to_raw(from, TAG, body).await;
                }
            });
    }
    let clients = traffic.nodes.saturating_sub(2).max(1);
    let round_trips = traffic.messages / 2;
    let mut done = Vec::new();
    for c in 0..clients {
        let share = round_trips / u64::from(clients)
            + u64::from(u64::from(c) < round_trips % u64::from(clients));
        let me = addr(256 + c);
        let client = handle.create_node().ip(me.ip()).build();
        done.push(client.spawn(async move {
            let ep = madsim::net::Endpoint::bind(me).await.expect("bind");
            for i in 0..share {
                let server = servers[(i % 2) as usize];
                let body: Box<dyn std::any::Any + Send + Sync> = Box::new(vec![0u8; BODY_BYTES]);
                ep.send_to_raw(server, TAG, body).await.expect("send");
                ep.recv_from_raw(TAG).await.expect("reply");
            }
            2 * share
        }));
    }
    let mut carried = 0;
    for client in done {
        carried += client.await.expect("a floor client finishes");
    }
    carried
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_runs_its_seeds() {
        let traffic = Traffic {
            nodes: 6,
            messages: 200,
        };
        let round = floor_sweep(traffic, 0..4, 2);
        assert_eq!(round.seeds, 4);
        assert_eq!(
            round.messages,
            4 * 200,
            "every seed carries the scenario's traffic"
        );
        let odd = Traffic {
            nodes: 3,
            messages: 7,
        };
        assert_eq!(
            floor_sweep(odd, 0..1, 1).messages,
            6,
            "whole round trips only"
        );
    }
}
