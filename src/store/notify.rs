//! Notifications: subscribers of a store hear about each committed change, and `eod watch`
//! follows the `changes` table of the file.
//!
//! Every change to a step or an operation appends an event in the same transaction, so the
//! events are the changes. A write transaction collects the events it appends. After its commit,
//! and before the next write transaction can begin, they are queued for every subscriber, so
//! each queue receives them in commit order. An aborted transaction queues nothing.
//!
//! Each subscriber has its own bounded queue and its own thread, which calls the subscriber's
//! function. Writers only put events into queues and never wait. A subscriber that falls
//! [`NOTIFICATION_QUEUE`] events behind loses the events that do not fit and then receives their
//! number in [`Notification::Missed`]. A subscriber's panic is caught and logged, and its next
//! event is delivered as usual.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};

use jiff::civil::Date;
use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use super::Store;
use super::tables;
use crate::error::{Error, Result};
use crate::model::{Event, OperationId};

/// The number of events a subscriber's queue can contain before further events are counted as
/// missed.
pub const NOTIFICATION_QUEUE: usize = 4096;

/// One committed change: an event appended to an operation's trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// The change's number in the file, from 1, increasing in commit order across every
    /// operation and process.
    pub change: u64,
    /// The operation.
    pub operation: OperationId,
    /// Its property.
    pub property: String,
    /// Its business date.
    pub business_date: Date,
    /// The event, as stored.
    pub event: Event,
}

/// A message to a subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Notification {
    /// A committed change.
    Change(Change),
    /// The subscriber's queue was full, and this many changes were not delivered to it. Read
    /// the operations it cares about again, with [`Store::view`] or [`Store::changes_after`].
    Missed {
        /// The number of changes lost.
        count: u64,
    },
}

/// A subscriber's queue.
struct Slot {
    id: u64,
    sender: SyncSender<Notification>,
    missed: u64,
}

/// The subscribers of one store.
#[derive(Default)]
pub(crate) struct Subscribers {
    slots: Mutex<Vec<Slot>>,
    /// Whether any subscriber exists, read by every write without taking the lock.
    any: AtomicBool,
    next_id: AtomicU64,
}

impl std::fmt::Debug for Subscribers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscribers").finish_non_exhaustive()
    }
}

impl Subscribers {
    /// Returns whether write transactions should collect their events.
    pub(crate) fn wanted(&self) -> bool {
        self.any.load(Ordering::Acquire)
    }

    /// Queues committed changes for every subscriber, without waiting for any of them.
    pub(crate) fn publish(&self, changes: &[Change]) {
        if changes.is_empty() {
            return;
        }
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots.retain_mut(|slot| {
            for change in changes {
                if slot.missed > 0 {
                    match slot
                        .sender
                        .try_send(Notification::Missed { count: slot.missed })
                    {
                        Ok(()) => slot.missed = 0,
                        Err(TrySendError::Full(_)) => {
                            slot.missed += 1;
                            continue;
                        }
                        Err(TrySendError::Disconnected(_)) => return false,
                    }
                }
                match slot.sender.try_send(Notification::Change(change.clone())) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_)) => slot.missed += 1,
                    Err(TrySendError::Disconnected(_)) => return false,
                }
            }
            true
        });
        self.any.store(!slots.is_empty(), Ordering::Release);
    }

    fn remove(&self, id: u64) {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots.retain(|slot| slot.id != id);
        self.any.store(!slots.is_empty(), Ordering::Release);
    }
}

/// A subscription made by [`Store::subscribe`]. Dropping it ends the subscription: events
/// already queued are still delivered, later ones are not.
#[must_use = "dropping a Subscription ends it"]
pub struct Subscription {
    id: u64,
    subscribers: std::sync::Weak<Subscribers>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(subscribers) = self.subscribers.upgrade() {
            subscribers.remove(self.id);
        }
    }
}

impl Store {
    /// Calls `subscriber` with every change committed through this store from now on: each
    /// event appended to an operation's trail, in commit order.
    ///
    /// # Delivery
    ///
    /// - Only committed changes are delivered, each at most once, after its commit. A call that
    ///   failed or was rolled back delivers nothing.
    /// - Changes arrive in commit order, on a thread of the subscriber's own.
    /// - Writers never wait for a subscriber. When a subscriber falls [`NOTIFICATION_QUEUE`]
    ///   changes behind, later changes are dropped for it and it receives
    ///   [`Notification::Missed`] with their number once there is room again.
    /// - A panic in `subscriber` is caught and logged; the next change is delivered as usual.
    /// - Changes committed by other processes, or by another `Store` on the same file, are not
    ///   delivered here: follow them with [`Store::changes_after`], as `eod watch` does.
    /// - Changes queued when the process ends are lost; the store's data is not. A subscriber
    ///   that must see every change reads [`Store::changes_after`] from its last change number
    ///   when it starts.
    ///
    /// Dropping the returned [`Subscription`] ends it.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the subscriber's thread cannot be started.
    pub fn subscribe(
        &self,
        subscriber: impl Fn(&Notification) + Send + 'static,
    ) -> Result<Subscription> {
        let (sender, receiver) = mpsc::sync_channel::<Notification>(NOTIFICATION_QUEUE);
        let id = self.subscribers.next_id.fetch_add(1, Ordering::Relaxed);
        std::thread::Builder::new()
            .name(format!("eodstore-subscriber-{id}"))
            .spawn(move || {
                for notification in receiver {
                    let delivered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        subscriber(&notification);
                    }));
                    if delivered.is_err() {
                        tracing::warn!(
                            subscriber = id,
                            "a subscriber panicked; it stays subscribed"
                        );
                    }
                }
            })
            .map_err(|source| Error::Io {
                action: "start a subscriber thread for",
                path: self.path.clone(),
                source,
            })?;
        let mut slots = self
            .subscribers
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        slots.push(Slot {
            id,
            sender,
            missed: 0,
        });
        self.subscribers.any.store(true, Ordering::Release);
        Ok(Subscription {
            id,
            subscribers: Arc::downgrade(&self.subscribers),
        })
    }

    /// Returns the number of the last change committed to the file, by any process; 0 when
    /// there is none. Pass it to [`Store::changes_after`] to follow later changes.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] when the file cannot be read.
    pub fn last_change(&self) -> Result<u64> {
        self.guarded("reading the last change", || {
            let txn = self
                .db
                .begin_read()
                .map_err(|err| Error::storage("reading the last change", err))?;
            let table = match txn.open_table(tables::CHANGES) {
                Ok(table) => table,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(0),
                Err(err) => return Err(Error::storage("reading the last change", err)),
            };
            Ok(table
                .last()
                .map_err(|err| Error::storage("reading the last change", err))?
                .map_or(0, |(key, _)| key.value()))
        })
    }

    /// Returns up to `limit` changes committed after change number `after`, by any process, in
    /// commit order, read from one snapshot.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] when a change names an event that does not exist, and
    /// [`Error::Storage`] when the file cannot be read.
    pub fn changes_after(&self, after: u64, limit: usize) -> Result<Vec<Change>> {
        self.guarded("reading changes", || {
            let storage = |err: redb::StorageError| Error::storage("reading changes", err);
            let txn = self
                .db
                .begin_read()
                .map_err(|err| Error::storage("reading changes", err))?;
            let changes = match txn.open_table(tables::CHANGES) {
                Ok(table) => table,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
                Err(err) => return Err(Error::storage("reading changes", err)),
            };
            let open = |err: redb::TableError| Error::storage("reading changes", err);
            let events = txn.open_table(tables::EVENTS).map_err(open)?;
            let operations = txn.open_table(tables::OPERATIONS).map_err(open)?;
            let mut labels: std::collections::HashMap<u64, (String, Date)> =
                std::collections::HashMap::new();
            let mut found = Vec::new();
            let Some(first) = after.checked_add(1) else {
                return Ok(found);
            };
            for entry in changes.range(first..).map_err(storage)?.take(limit) {
                let (key, value) = entry.map_err(storage)?;
                let (operation, seq) = value.value();
                let id = OperationId(operation);
                let missing = || Error::Decode {
                    table: "changes",
                    key: key.value().to_string(),
                    detail: format!(
                        "it names event {seq} of operation {id}, which does not exist; run `eod check`"
                    ),
                };
                let event = match seq.checked_sub(1) {
                    Some(after) => tables::read_events(&events, id, after, 1)?.pop(),
                    None => None,
                }
                .ok_or_else(missing)?;
                let (property, business_date) = match labels.entry(operation) {
                    std::collections::hash_map::Entry::Occupied(entry) => entry.get().clone(),
                    std::collections::hash_map::Entry::Vacant(entry) => {
                        let record =
                            tables::read_operation(&operations, id)?.ok_or_else(missing)?;
                        entry
                            .insert((record.property, record.business_date))
                            .clone()
                    }
                };
                found.push(Change {
                    change: key.value(),
                    operation: id,
                    property,
                    business_date,
                    event,
                });
            }
            Ok(found)
        })
    }
}
