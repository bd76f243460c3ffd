//! The messages of a run as the HTML timeline draws them: who sent what to whom and when, its
//! class and payments (decoded once, when it is sent), and what the network did with it. Kept
//! beside the history, never in it, so recording messages changes no trace hash.

use crate::system::MessageView;
use broker_under_test::transport::{Delivery, MessageKind};
use broker_under_test::NodeName;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Mutex;

/// What a message is, decided from its decoded body: the timeline colours an arrow by it.
/// Finer than the transport's [`MessageKind`] (request or reply), which it implies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MessageClass {
    /// Registers a producer (or re-registers it after a restart).
    InitProducerId,
    /// A batch of payments for one partition.
    Produce,
    /// A read from a partition.
    Fetch,
    /// The consumer's committed offset, to store.
    OffsetCommit,
    /// A read of the consumer's committed offset.
    OffsetFetch,
    /// A payment for the store to apply.
    Apply,
    /// A request whose body did not decode.
    MalformedRequest,
    /// The answer to `InitProducerId`: the new epoch and the last sequences appended.
    ProducerIdIssued,
    /// A produce acknowledged: the batch is durable.
    Produced,
    /// Records read from a partition.
    Fetched,
    /// A commit stored.
    OffsetCommitted,
    /// A committed offset read back.
    OffsetFetched,
    /// A payment applied (or recognised as applied).
    Applied,
    /// A refusal, with its error code.
    Error,
    /// A reply whose body did not decode.
    MalformedReply,
    /// The store's rows, asked for by an operator's read.
    ListRows,
    /// A page of the store's rows.
    Rows,
    /// Replication: a broker's heartbeat to the controller.
    Heartbeat,
    /// Replication: a broker whose recovery cut its log gives up its place in the in-sync sets.
    Resign,
    /// Replication: a client asks the controller who leads each partition.
    Metadata,
    /// Replication: a leader asks the controller to change a partition's in-sync replicas.
    AlterIsr,
    /// Replication: a follower fetches from its leader.
    ReplicaFetch,
    /// Replication: a producer asks a leader for its last committed sequence.
    LastSeq,
    /// Replication: the controller's view of every partition's leadership.
    Leadership,
    /// Replication: batches for a follower.
    Replicated,
    /// Replication: the follower's log diverges; where to truncate.
    Diverging,
    /// Replication: a producer's last committed sequence on a partition.
    LastSeqAnswered,
    /// A request of a system whose `describe` does not class it.
    OtherRequest,
    /// A reply of a system whose `describe` does not class it.
    OtherReply,
}

/// One message: who sent it when, what it carried, and what the network did with it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct MessageRecord {
    /// The sender.
    pub from: NodeName,
    /// The receiver.
    pub to: NodeName,
    /// What it is.
    pub class: MessageClass,
    /// A short label, as the history names it.
    pub label: String,
    /// Payment ids the message carries (a reply: those of its request, or the fetched ones).
    pub payments: Vec<String>,
    /// When it left (simulated microseconds).
    pub sent_us: u64,
    /// When each delivered copy arrived at the receiver (two for a duplicate).
    pub arrived_us: Vec<u64>,
    /// Why it was lost, if the network lost it. No arrival and no cause: the receiver was down.
    pub dropped: Option<String>,
}

/// A message on its way: the network's hooks see the same four values at send and at fate,
/// and a reply names its request by them with the direction reversed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct InFlight {
    /// Where it left from.
    pub src: SocketAddr,
    /// Where it goes.
    pub dst: SocketAddr,
    /// Whether it is a reply.
    pub reply: bool,
    /// The request id it carries (a reply: its request's).
    pub request_id: u64,
}

impl InFlight {
    /// A message as the network's hooks see it.
    pub fn new(src: SocketAddr, dst: SocketAddr, kind: MessageKind, request_id: u64) -> InFlight {
        InFlight {
            src,
            dst,
            reply: kind == MessageKind::Reply,
            request_id,
        }
    }

    /// The request a reply answers.
    fn request(self) -> InFlight {
        InFlight {
            src: self.dst,
            dst: self.src,
            reply: false,
            request_id: self.request_id,
        }
    }
}

/// The messages of one run, in send order. The network's hooks run on madsim's one thread, but
/// they take `&self`, hence the lock.
#[derive(Default)]
pub struct MessageLog(Mutex<Log>);

#[derive(Default)]
struct Log {
    records: Vec<MessageRecord>,
    /// The record of each message still to be told its fate; a retry with the same request id
    /// replaces its predecessor, which has had its fate by then.
    open: BTreeMap<InFlight, usize>,
}

impl MessageLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, Log> {
        // A panicking node is an anomaly the run reports; its records are still worth drawing.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a message as it leaves `from` for `to`, as its system describes it.
    pub fn sent(
        &self,
        msg: InFlight,
        from: NodeName,
        to: NodeName,
        view: MessageView,
        now_us: u64,
    ) {
        let mut log = self.lock();
        let mut payments = view.payments;
        // An ack or an apply reply does not repeat the payments, but the reader follows a
        // payment through them too.
        if msg.reply && payments.is_empty() {
            if let Some(&i) = log.open.get(&msg.request()) {
                payments = log.records[i].payments.clone();
            }
        }
        let record = MessageRecord {
            from,
            to,
            class: view.class,
            label: view.label,
            payments,
            sent_us: now_us,
            arrived_us: Vec::new(),
            dropped: None,
        };
        let i = log.records.len();
        log.records.push(record);
        log.open.insert(msg, i);
    }

    /// Notes what the network did with a message recorded by [`MessageLog::sent`].
    pub fn fate(&self, msg: InFlight, fate: Delivery, cause: Option<&str>, now_us: u64) {
        let mut log = self.lock();
        let Some(&i) = log.open.get(&msg) else { return };
        let record = &mut log.records[i];
        match fate {
            Delivery::Drop => record.dropped = Some(cause.unwrap_or("loss").to_string()),
            Delivery::Deliver(d) => record.arrived_us.push(now_us + d.as_micros() as u64),
            Delivery::Duplicate(a, b) => {
                record.arrived_us.push(now_us + a.as_micros() as u64);
                record.arrived_us.push(now_us + b.as_micros() as u64);
            }
        }
    }

    /// The recorded messages, in send order.
    pub fn take(&self) -> Vec<MessageRecord> {
        std::mem::take(&mut self.lock().records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::{BrokerSystem, System};
    use broker_under_test::codec::{Payment, Request, Response};
    use std::time::Duration;

    fn addr(last: u8) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, last], 1))
    }

    #[test]
    fn a_reply_carries_its_requests_payments_and_its_own_class() {
        let log = MessageLog::default();
        let request = InFlight::new(addr(1), addr(2), MessageKind::Request, 7);
        let produce = Request::Produce {
            partition: 0,
            producer_id: 1,
            epoch: 0,
            base_seq: 3,
            records: vec![Payment::generate(0, 3, 4), Payment::generate(0, 4, 4)],
        };
        log.sent(
            request,
            NodeName::Producer(0),
            NodeName::Broker,
            BrokerSystem.describe(MessageKind::Request, 7, &produce.encode()),
            1_000,
        );
        log.fate(request, Delivery::Drop, Some("partition"), 1_000);
        let reply = InFlight::new(addr(2), addr(1), MessageKind::Reply, 7);
        let ack = Response::Produced { base_offset: 12 };
        log.sent(
            reply,
            NodeName::Broker,
            NodeName::Producer(0),
            BrokerSystem.describe(MessageKind::Reply, 7, &ack.encode()),
            2_000,
        );
        let twice = Delivery::Duplicate(Duration::from_micros(5), Duration::from_micros(9));
        log.fate(reply, twice, None, 2_000);
        let records = log.take();
        assert_eq!(records[0].class, MessageClass::Produce);
        assert_eq!(records[0].label, "produce partition=0 epoch=0 seq=3+2");
        assert_eq!(records[0].dropped.as_deref(), Some("partition"));
        assert_eq!(records[1].class, MessageClass::Produced);
        assert_eq!(records[1].label, "reply #7: produced offset=12");
        assert_eq!(records[1].payments, ["p-0-3", "p-0-4"]);
        assert_eq!(records[1].arrived_us, [2_005, 2_009]);
        assert!(log.take().is_empty());
    }
}
