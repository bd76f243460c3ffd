//! `node`: one role of the system under test (broker, store, consumer or producer) as a real
//! process: UDP on 127.0.0.1, files with fsync, events appended as JSON lines. The harness's
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
    use broker_under_test::consumer::{run_consumer, ConsumerConfig};
    use broker_under_test::node::{NodeCtx, RetryPolicy};
    use broker_under_test::producer::{run_producer, ProducerConfig};
    use broker_under_test::real::{FileStorage, JsonLinesObserver, UdpTransport};
    use broker_under_test::store::run_store;
    use broker_under_test::{Bug, Bugs, NodeName};
    use std::collections::BTreeMap;
    use std::net::SocketAddr;
    use std::path::PathBuf;
    use std::sync::Arc;
    use std::time::Duration;

    const USAGE: &str = "usage: node --role broker|store|consumer|producer --name NAME --listen 127.0.0.1:PORT \
        --data-dir DIR --events FILE --incarnation N --run-for-ms MS [--broker ADDR] [--store ADDR] \
        [--partitions N] [--index I --payments N --customers C --payment-interval-ms MS --max-batch N] \
        [--seed S] [--bug NAME]...";

    struct Args {
        values: BTreeMap<String, String>,
        bugs: Bugs,
    }

    impl Args {
        fn parse() -> Result<Args, String> {
            let mut values = BTreeMap::new();
            let mut bugs = Bugs::NONE;
            let mut args = std::env::args().skip(1);
            while let Some(flag) = args.next() {
                let key = flag
                    .strip_prefix("--")
                    .ok_or_else(|| format!("unexpected argument '{flag}'"))?;
                let value = args
                    .next()
                    .ok_or_else(|| format!("--{key} needs a value"))?;
                if key == "bug" {
                    bugs = bugs.with(value.parse::<Bug>().map_err(|e| e.to_string())?);
                } else {
                    values.insert(key.to_string(), value);
                }
            }
            Ok(Args { values, bugs })
        }

        fn get<T: std::str::FromStr>(&self, key: &str) -> Result<T, String> {
            let raw = self
                .values
                .get(key)
                .ok_or_else(|| format!("--{key} is required"))?;
            raw.parse()
                .map_err(|_| format!("--{key} '{raw}' is not valid"))
        }

        fn or<T: std::str::FromStr>(&self, key: &str, default: T) -> Result<T, String> {
            if self.values.contains_key(key) {
                self.get(key)
            } else {
                Ok(default)
            }
        }
    }

    pub fn main() -> i32 {
        // Logs are for a person watching the processes; off unless RUST_LOG asks. They go to
        // stderr, never into the events file the harness judges.
        if std::env::var_os("RUST_LOG").is_some() {
            tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .init();
        }
        match run() {
            Ok(()) => 0,
            Err(message) => {
                eprintln!("node: {message}\n{USAGE}");
                2
            }
        }
    }

    fn run() -> Result<(), String> {
        let args = Args::parse()?;
        let role: String = args.get("role")?;
        let name: NodeName = args.get("name")?;
        let listen: SocketAddr = args.get("listen")?;
        if !listen.ip().is_loopback() {
            return Err(format!("--listen {listen}: nodes listen on loopback only"));
        }
        let data_dir: PathBuf = args.get("data-dir")?;
        let events: PathBuf = args.get("events")?;
        let incarnation: u64 = args.get("incarnation")?;
        let run_for = Duration::from_millis(args.get("run-for-ms")?);
        let partitions: u32 = args.or("partitions", 3)?;
        let retry = RetryPolicy::default();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async move {
            let transport = UdpTransport::bind(listen, incarnation)
                .await
                .map_err(|e| format!("bind {listen}: {e}"))?;
            let ctx = NodeCtx {
                name,
                transport: Arc::new(transport),
                storage: Arc::new(FileStorage::new(data_dir).map_err(|e| e.to_string())?),
                observer: Arc::new(JsonLinesObserver::open(&events).map_err(|e| e.to_string())?),
                bugs: args.bugs,
            };
            let role_main = async {
                match role.as_str() {
                    "broker" => {
                        run_broker(
                            ctx,
                            BrokerConfig {
                                partitions,
                                ..BrokerConfig::default()
                            },
                        )
                        .await
                    }
                    "store" => run_store(ctx).await,
                    "consumer" => {
                        let cfg = ConsumerConfig {
                            group: "payments".to_string(),
                            partitions,
                            broker: args.get("broker")?,
                            store: args.get("store")?,
                            fetch_max_records: 32,
                            poll_interval: Duration::from_millis(20),
                            retry,
                        };
                        run_consumer(ctx, cfg).await
                    }
                    "producer" => {
                        let cfg = ProducerConfig {
                            index: args.get("index")?,
                            payments: args.get("payments")?,
                            customers: args.or("customers", 12)?,
                            payment_interval: Duration::from_millis(
                                args.or("payment-interval-ms", 5)?,
                            ),
                            partitions,
                            broker: args.get("broker")?,
                            max_batch_records: args.or("max-batch", 8)?,
                            max_in_flight: 5,
                            linger: Duration::from_millis(5),
                            retry,
                            seed: args.or("seed", 0)?,
                        };
                        run_producer(ctx, cfg).await
                    }
                    other => return Err(format!("unknown role '{other}'")),
                }
                .map_err(|e| e.to_string())
            };
            // Every process stops by itself: a bounded run, whatever the driver does.
            match tokio::time::timeout(run_for, role_main).await {
                Ok(result) => result,
                Err(_) => Ok(()),
            }
        })
    }
}
