//! `node`: one role of the system under test (broker, store, consumer or producer; replica or
//! controller of a replicated deployment) as a real process: UDP on 127.0.0.1, files with fsync, events appended as JSON lines. The harness's
//! real mode (`harness real`) starts, kills and restarts these processes.
//!
//! Built without the simulation:
//! `RUSTFLAGS="" cargo build --release -p broker-under-test --bin node --target-dir target/real`

#[cfg(madsim)]
fn main() {
    eprintln!(
        "node: this binary runs outside the simulation; build it with \
         RUSTFLAGS=\"\" cargo build --release -p broker-under-test --bin node --target-dir target/real"
    );
    std::process::exit(2);
}

#[cfg(not(madsim))]
fn main() {
    std::process::exit(real_main::main());
}

#[cfg(not(madsim))]
mod real_main {
    use broker_under_test::broker::{run_broker, BrokerConfig};
    use broker_under_test::client::ReplicatedAddrs;
    use broker_under_test::consumer::{run_consumer, ConsumerConfig};
    use broker_under_test::controller::run_controller;
    use broker_under_test::node::{NodeCtx, RetryPolicy};
    use broker_under_test::producer::{run_producer, PaymentSizes, ProducerConfig};
    use broker_under_test::real::{FileStorage, JsonLinesObserver, UdpTransport};
    use broker_under_test::replica::run_replica;
    use broker_under_test::replication::{
        ControllerConfig, ReplicaConfig, ReplicationConfig, REPLICAS_MAX,
    };
    use broker_under_test::store::run_store;
    use broker_under_test::{Bug, NodeName};
    use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
    use clap::{Parser, ValueEnum};
    use std::net::SocketAddr;
    use std::path::PathBuf;
    use std::sync::Arc;
    use std::time::Duration;

    /// One role of the system under test as a real process, on loopback, for a bounded time.
    // A flag given twice keeps its last value, as the hand-rolled parser before clap did.
    #[derive(Parser, Debug)]
    #[command(name = "node", args_override_self = true)]
    struct Args {
        /// The role this process plays.
        #[arg(long, value_enum)]
        role: Role,
        /// The node's name (broker, broker-<index>, controller, store, consumer,
        /// producer-<index>); it stamps every event.
        #[arg(long)]
        name: NodeName,
        /// The UDP address to listen on (loopback only), e.g. 127.0.0.1:7001.
        #[arg(long)]
        listen: SocketAddr,
        /// The directory of this node's durable files; created if missing.
        #[arg(long)]
        data_dir: PathBuf,
        /// The file every event is appended to, one JSON line each.
        #[arg(long)]
        events: PathBuf,
        /// This start's number: must differ between starts of the same node, so that a late
        /// reply to a dead incarnation is never taken for a reply to this one.
        #[arg(long)]
        incarnation: u64,
        /// The process exits by itself after this many milliseconds.
        #[arg(long)]
        run_for_ms: u64,
        /// The number of log partitions.
        #[arg(long, default_value_t = 3)]
        partitions: u32,
        /// Seeds the producer's retry jitter (with its boot number).
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// A planted bug to switch on (repeatable).
        #[arg(long = "bug", value_name = "BUG", value_parser = bug_parser())]
        bugs: Vec<Bug>,
        /// The broker's address (consumer and producer, unless --controller names a replicated
        /// deployment).
        #[arg(long)]
        broker: Option<SocketAddr>,
        /// The store's address (consumer).
        #[arg(long, required_if_eq("role", "consumer"))]
        store: Option<SocketAddr>,
        /// The producer's number: its payments are p-<index>-<n> (producer); the replica's
        /// number: it is broker-<index> (replica).
        #[arg(long, required_if_eq_any([("role", "producer"), ("role", "replica")]))]
        index: Option<u32>,
        /// The controller's address (replica; consumer and producer of a replicated
        /// deployment, which then ignore --broker).
        #[arg(long, required_if_eq("role", "replica"))]
        controller: Option<SocketAddr>,
        /// Every replica's address, replica 0 first, comma-separated (replica and controller;
        /// consumer and producer of a replicated deployment). Their number is the number of
        /// brokers, at least 2.
        #[arg(
            long,
            value_delimiter = ',',
            required_if_eq_any([("role", "replica"), ("role", "controller")])
        )]
        replicas: Vec<SocketAddr>,
        /// How many payments the producer makes in all (producer).
        #[arg(long, required_if_eq("role", "producer"))]
        payments: Option<u32>,
        /// How many distinct customer keys the payments spread over (producer).
        #[arg(long, default_value_t = 12)]
        customers: u32,
        /// Milliseconds between two new payments (producer).
        #[arg(long, default_value_t = 5)]
        payment_interval_ms: u64,
        /// The most payments in one batch (producer).
        #[arg(long, default_value_t = 8)]
        max_batch: u32,
        /// Where producers' sequences start; broker and producers must agree.
        #[arg(long, default_value_t = 0)]
        first_seq: u32,
        /// Payment sizes in encoded bytes, `MIN..MAX` inclusive (default: small, same-sized).
        #[arg(long, value_name = "MIN..MAX", value_parser = parse_sizes)]
        payment_bytes: Option<(u64, u64)>,
        /// Spread payment sizes over their orders of magnitude instead of uniformly.
        #[arg(long)]
        payment_bytes_log_uniform: bool,
    }

    fn parse_sizes(s: &str) -> Result<(u64, u64), String> {
        let (lo, hi) = s.split_once("..").ok_or("expected MIN..MAX")?;
        let lo: u64 = lo.parse().map_err(|e| format!("MIN: {e}"))?;
        let hi: u64 = hi.parse().map_err(|e| format!("MAX: {e}"))?;
        if lo > hi {
            return Err("MIN must not exceed MAX".into());
        }
        Ok((lo, hi))
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
    enum Role {
        /// The partition logs, producer state and consumer offsets.
        Broker,
        /// The payment store, deduplicating by payment id.
        Store,
        /// Fetches from the broker, applies to the store, commits offsets.
        Consumer,
        /// Makes payments into its outbox and sends them to the broker.
        Producer,
        /// One broker of a replicated deployment: leads some partitions, follows the others.
        Replica,
        /// The controller of a replicated deployment: leaders, in-sync replicas, producer ids
        /// and consumer offsets.
        Controller,
    }

    /// `--bug` accepts exactly the catalogue's names, each listed with its description.
    fn bug_parser() -> impl TypedValueParser<Value = Bug> {
        PossibleValuesParser::new(
            Bug::ALL.map(|bug| PossibleValue::new(bug.name()).help(bug.description())),
        )
        .map(|name| {
            name.parse::<Bug>()
                .expect("the parser admits only catalogue names")
        })
    }

    pub fn main() -> i32 {
        // Bad flags: clap prints the error and the usage, and exits with status 2.
        let args = Args::parse();
        // Logs are for a person watching the processes; off unless RUST_LOG asks. They go to
        // stderr, never into the events file the harness judges.
        if std::env::var_os("RUST_LOG").is_some() {
            tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .init();
        }
        let _node = tracing::info_span!("node", name = %args.name).entered();
        match run(args) {
            Ok(()) => 0,
            Err(message) => {
                eprintln!("node: {message}");
                2
            }
        }
    }

    fn run(args: Args) -> Result<(), String> {
        if !args.listen.ip().is_loopback() {
            return Err(format!(
                "--listen {}: nodes listen on loopback only",
                args.listen
            ));
        }
        let run_for = Duration::from_millis(args.run_for_ms);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async move {
            let ctx = node_ctx(&args).await?;
            // Every process stops by itself: a bounded run, whatever the driver does.
            match tokio::time::timeout(run_for, run_role(ctx, &args)).await {
                Ok(result) => result,
                Err(_) => Ok(()),
            }
        })
    }

    async fn node_ctx(args: &Args) -> Result<NodeCtx, String> {
        let transport = UdpTransport::bind(args.listen, args.incarnation)
            .await
            .map_err(|e| format!("bind {}: {e}", args.listen))?;
        Ok(NodeCtx {
            name: args.name,
            transport: Arc::new(transport),
            storage: Arc::new(FileStorage::new(args.data_dir.clone()).map_err(|e| e.to_string())?),
            observer: Arc::new(JsonLinesObserver::open(&args.events).map_err(|e| e.to_string())?),
            bugs: args.bugs.iter().copied().collect(),
        })
    }

    async fn run_role(ctx: NodeCtx, args: &Args) -> Result<(), String> {
        match args.role {
            Role::Broker => run_broker(ctx, broker_config(args)).await,
            Role::Replica => {
                let replica = ReplicaConfig {
                    index: required(args.index, "index")?,
                    replication: replication(args)?,
                    controller: required(args.controller, "controller")?,
                    replicas: args.replicas.clone(),
                };
                if replica.index >= replica.replication.brokers {
                    return Err(format!("--index {} names no replica", replica.index));
                }
                run_replica(ctx, broker_config(args), replica).await
            }
            Role::Controller => {
                let cfg = ControllerConfig {
                    partitions: args.partitions,
                    replication: replication(args)?,
                };
                run_controller(ctx, cfg).await
            }
            Role::Store => run_store(ctx).await,
            Role::Consumer => run_consumer(ctx, consumer_config(args)?).await,
            Role::Producer => run_producer(ctx, producer_config(args)?).await,
        }
        .map_err(|e| e.to_string())
    }

    fn broker_config(args: &Args) -> BrokerConfig {
        BrokerConfig {
            partitions: args.partitions,
            first_seq: args.first_seq,
            ..BrokerConfig::default()
        }
    }

    /// The replicated deployment's timing, for as many brokers as `--replicas` lists.
    fn replication(args: &Args) -> Result<ReplicationConfig, String> {
        let brokers = args.replicas.len() as u32;
        if !(2..=REPLICAS_MAX).contains(&brokers) {
            return Err(format!(
                "--replicas lists {brokers} addresses; a replicated deployment has 2..={REPLICAS_MAX}"
            ));
        }
        Ok(ReplicationConfig::new(brokers))
    }

    /// A client's view of a replicated deployment, if `--controller` names one.
    fn replicated(args: &Args) -> Result<Option<ReplicatedAddrs>, String> {
        let Some(controller) = args.controller else {
            return Ok(None);
        };
        replication(args)?;
        Ok(Some(ReplicatedAddrs {
            controller,
            replicas: args.replicas.clone(),
        }))
    }

    /// The broker a client talks to; in a replicated deployment it talks to the controller and
    /// the leaders instead, and the field only holds the controller's address.
    fn client_broker(args: &Args) -> Result<SocketAddr, String> {
        args.broker
            .or(args.controller)
            .ok_or_else(|| "--broker is required for this role".to_string())
    }

    fn consumer_config(args: &Args) -> Result<ConsumerConfig, String> {
        Ok(ConsumerConfig {
            group: "payments".to_string(),
            partitions: args.partitions,
            broker: client_broker(args)?,
            store: required(args.store, "store")?,
            fetch_max_records: 32,
            poll_interval: Duration::from_millis(20),
            retry: RetryPolicy::default(),
            replicated: replicated(args)?,
        })
    }

    fn producer_config(args: &Args) -> Result<ProducerConfig, String> {
        Ok(ProducerConfig {
            index: required(args.index, "index")?,
            payments: required(args.payments, "payments")?,
            customers: args.customers,
            payment_interval: Duration::from_millis(args.payment_interval_ms),
            partitions: args.partitions,
            broker: client_broker(args)?,
            max_batch_records: args.max_batch,
            max_in_flight: 5,
            linger: Duration::from_millis(5),
            retry: RetryPolicy::default(),
            seed: args.seed,
            first_seq: args.first_seq,
            payment_sizes: args
                .payment_bytes
                .map(|(min_bytes, max_bytes)| PaymentSizes {
                    min_bytes,
                    max_bytes,
                    log_uniform: args.payment_bytes_log_uniform,
                }),
            replicated: replicated(args)?,
        })
    }

    /// A role's flag; clap already insists on it for that role, so this error is a backstop.
    fn required<T>(value: Option<T>, flag: &str) -> Result<T, String> {
        value.ok_or_else(|| format!("--{flag} is required for this role"))
    }
}
