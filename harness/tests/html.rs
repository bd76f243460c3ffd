//! The HTML timeline: lanes, the highlighted first anomaly and its payment's path, for a known
//! failing run and for the first failing seed of every planted bug; self-contained; and drawing
//! it changes no trace hash.

use broker_under_test::{Bug, Bugs};
use harness::report::html::render;
use harness::scenario::Scenario;
use harness::sim::run;
use harness::world::RunPlan;

fn page(scenario: &str, seed: u64, bugs: Bugs) -> (RunPlan, harness::world::RunOutcome, String) {
    let mut plan = RunPlan::new(Scenario::resolve(scenario).unwrap(), seed, bugs);
    plan.record_messages = true;
    let outcome = run(&plan);
    let html = render(&plan, &outcome, &plan.replay_command());
    (plan, outcome, html)
}

fn count(html: &str, needle: &str) -> usize {
    html.matches(needle).count()
}

#[test]
fn a_failing_run_renders_lanes_the_anomaly_and_the_payments_path() {
    let (plan, outcome, html) = page("consumer-restarts", 0, Bugs::NONE.with(Bug::StoreNoDedup));
    assert!(!outcome.passed());
    let payment = outcome.anomalies[0]
        .payment
        .clone()
        .expect("store-duplicate names its payment");
    // A lane per node.
    assert_eq!(
        count(&html, r#"<line class="lane""#),
        3 + plan.scenario.workload.producers as usize
    );
    // The first anomaly is highlighted and its payment traced across lanes.
    assert_eq!(count(&html, r#"id="first-anomaly""#), 1);
    assert!(html.contains(&format!(
        "first anomaly: {}",
        outcome.anomalies[0].kind.name()
    )));
    assert!(
        count(&html, " trace\"") >= 4,
        "the payment's messages (produce, ack, fetch, apply) are traced"
    );
    // Each step of the payment's path is coloured by what the message is.
    for class in ["k-produce", "k-ack", "k-fetched", "k-apply", "k-applied"] {
        assert!(
            html.contains(&format!(r##"class="msg {class} trace""##)),
            "no traced {class} arrow"
        );
    }
    assert!(count(&html, r#"class="trace-event""#) >= 3);
    assert!(
        html.contains(&format!(" {payment} ")),
        "messages carry data-p with the payment id"
    );
    // Crashes and restarts of the consumer, lost messages, the header.
    assert!(count(&html, r#"<g class="crash""#) >= 1 && count(&html, r#"class="restart""#) >= 1);
    assert!(html.contains("harness run --scenario consumer-restarts --seed 0 --bug store-no-dedup"));
    assert!(html.contains("FAIL") && html.contains(&outcome.trace_hash.to_string()));
    // Self-contained: no script, style, font or image from anywhere else.
    for external in ["src=", "<link", "@import", "url(http"] {
        assert!(
            !html.contains(external),
            "the page loads something external: {external}"
        );
    }
    // Recording messages for the page does not change the run.
    let plain = run(&RunPlan {
        record_messages: false,
        ..plan
    });
    assert_eq!(plain.trace_hash, outcome.trace_hash);
    assert!(plain.messages.is_empty() && !outcome.messages.is_empty());
}

#[test]
fn every_planted_bugs_first_failing_page_shows_its_anomaly_and_payment() {
    for bug in Bug::ALL {
        let scenario = harness::explore::hunt::exposing_scenarios(bug)[0];
        let (_, outcome, html) = (0..20)
            .map(|seed| page(scenario, seed, Bugs::NONE.with(bug)))
            .find(|(_, o, _)| !o.passed())
            .unwrap_or_else(|| panic!("{bug} undetected"));
        assert_eq!(count(&html, r#"id="first-anomaly""#), 1, "{bug}");
        if let Some(payment) = &outcome.anomalies[0].payment {
            assert!(
                count(&html, r#"class="trace-event""#) >= 1,
                "{bug}: {payment}'s events are not on the lanes"
            );
            // A payment that never left its producer (a stuck one) has no message to trace.
            if outcome
                .messages
                .iter()
                .any(|m| m.payments.contains(payment))
            {
                assert!(
                    count(&html, " trace\"") >= 1,
                    "{bug}: no message of {payment} is traced"
                );
            }
        }
    }
}

#[test]
fn a_replicated_run_has_a_lane_per_replica_and_the_controller_with_leadership_shown() {
    let (plan, outcome, html) = page("failover", 1, Bugs::NONE);
    assert!(outcome.passed(), "{:#?}", outcome.anomalies);
    for lane in ["broker-0", "broker-1", "broker-2", "controller", "store"] {
        assert!(
            html.contains(&format!(r#"<line class="lane" data-node="{lane}""#)),
            "no lane for {lane}"
        );
    }
    assert!(!html.contains(r#"<line class="lane" data-node="broker""#));
    assert_eq!(
        count(&html, r#"<line class="lane""#),
        6 + plan.scenario.workload.producers as usize
    );
    // Every partition starts with a leader, and the seed's crashes move some of them.
    let partitions = plan.scenario.workload.partitions as usize;
    assert!(count(&html, r#"<g class="leader""#) > partitions);
    assert!(count(&html, r#"<g class="election""#) >= 1);
    assert!(html.contains("leads partition 0 at epoch 0"));
    // The seed's replication faults are drawn on their lanes.
    for kind in ["isolate", "lag"] {
        if plan.schedule.iter().any(|e| e.fault.kind() == kind) {
            assert!(html.contains(&format!(r#"<rect class="{kind}""#)), "{kind}");
        }
    }
}
