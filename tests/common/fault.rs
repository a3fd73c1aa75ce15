//! A simulated disk for fault-injection tests.
//!
//! [`SharedDisk`] keeps a store's bytes in memory, shared by every [`FaultyBackend`] handle opened
//! on it, so that dropping a store and opening a new handle works like reopening a file. The disk
//! counts every I/O call and can fail a chosen one with an `io::Error`: once, or that call and
//! every later one until [`SharedDisk::disarm`]. A capacity makes writes fail with `ENOSPC`. A
//! power cut freezes the disk as it stood at a chosen `sync_data`, and
//! [`SharedDisk::crash_image`] rebuilds what the medium could hold after it. A lying disk
//! ([`SharedDisk::lie_from_sync`]) freezes its durable bytes the same way but lets any later
//! change reach the medium. Each handle implements redb's byte-range locks, so every concurrency
//! mode of redb works on it.

use std::collections::BTreeSet;
use std::fmt;
use std::io;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use redb::{BackendError, StorageBackend};

/// `EIO`, the error of a failing device (Linux and macOS).
pub const EIO: i32 = 5;
/// `ENOSPC`, the error of a full file system (Linux and macOS).
pub const ENOSPC: i32 = 28;

/// The size of a disk sector: the unit that a power cut leaves either old or new.
pub const SECTOR: usize = 512;
/// The size of a file-system block, the unit a sparse file allocates.
const BLOCK: u64 = 4096;

/// The kinds of I/O call that a [`FaultyBackend`] counts and can fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IoKind {
    Len,
    Read,
    Write,
    SetLen,
    Sync,
}

impl IoKind {
    pub const ALL: [IoKind; 5] = [
        IoKind::Len,
        IoKind::Read,
        IoKind::Write,
        IoKind::SetLen,
        IoKind::Sync,
    ];
}

/// Whether a fault fails only its call or every call from it on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultMode {
    Once,
    Forever,
}

/// An armed fault: the 1-based number of the I/O call that fails, counted over all kinds.
#[derive(Debug, Clone, Copy)]
struct Fault {
    call: u64,
    mode: FaultMode,
    errno: i32,
}

/// A limit on the bytes a disk can hold.
#[derive(Debug, Clone, Copy)]
pub struct Capacity {
    /// The bytes available.
    pub bytes: u64,
    /// Whether `set_len` only sets the length, as `ftruncate` does on ext4 or XFS, so that the
    /// write into a new block is what fails. When `false`, growing the length reserves the
    /// space and `set_len` fails.
    pub sparse: bool,
}

/// A change that reached the disk's cache but not yet its stable storage.
#[derive(Debug, Clone)]
enum Unsynced {
    Write { offset: u64, data: Vec<u8> },
    SetLen(u64),
}

/// The disk as a power cut at one `sync_data` found it.
#[derive(Debug, Clone)]
struct Frozen {
    durable: Vec<u8>,
    /// The changes made after the last durable sync and before the cut, in order. On a lying
    /// disk, also those of every later sync.
    in_flight: Vec<Unsynced>,
}

#[derive(Debug, Default)]
struct DiskState {
    /// The bytes that reads return.
    image: Vec<u8>,
    /// The bytes as of the last successful `sync_data`.
    durable: Vec<u8>,
    /// Changes since the last successful `sync_data`, in the order they were made.
    unsynced: Vec<Unsynced>,
    /// The blocks that hold written data, which a sparse capacity counts.
    allocated: BTreeSet<u64>,
    capacity: Option<Capacity>,
    /// The number of I/O calls so far, failed ones included.
    calls: u64,
    /// The kind of each I/O call so far, when recording.
    log: Option<Vec<IoKind>>,
    fault: Option<Fault>,
    /// Whether the armed fault has failed a call. A `Forever` fault fails every call while set.
    fired: bool,
    /// The 1-based number of the `sync_data` call at which the power is cut.
    cut_at_sync: Option<u64>,
    /// Whether the disk lies about its syncs from `cut_at_sync` on, so that every change made
    /// after it stays a candidate for the crash image.
    lying: bool,
    syncs: u64,
    frozen: Option<Frozen>,
}

/// One byte-range lock held by a handle.
#[derive(Debug, Clone, Copy)]
struct HeldLock {
    handle: u64,
    first: u64,
    last: u64,
    shared: bool,
    bounds: (Bound<u64>, Bound<u64>),
}

impl HeldLock {
    fn conflicts(&self, handle: u64, first: u64, last: u64, shared: bool) -> bool {
        self.handle != handle
            && self.first <= last
            && first <= self.last
            && !(self.shared && shared)
    }
}

struct DiskInner {
    state: Mutex<DiskState>,
    locks: Mutex<Vec<HeldLock>>,
    /// Signalled whenever a lock is released.
    released: Condvar,
    next_handle: AtomicU64,
}

/// A disk in memory shared by every backend handle opened on it.
#[derive(Clone)]
pub struct SharedDisk(Arc<DiskInner>);

impl Default for SharedDisk {
    fn default() -> Self {
        SharedDisk::new()
    }
}

impl fmt::Debug for SharedDisk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state();
        f.debug_struct("SharedDisk")
            .field("len", &state.image.len())
            .field("calls", &state.calls)
            .finish_non_exhaustive()
    }
}

impl SharedDisk {
    /// Creates an empty disk.
    pub fn new() -> SharedDisk {
        SharedDisk::from_image(Vec::new())
    }

    /// Creates a disk whose stable storage contains `image`.
    pub fn from_image(image: Vec<u8>) -> SharedDisk {
        let allocated = (0..(image.len() as u64).div_ceil(BLOCK)).collect();
        let state = DiskState {
            durable: image.clone(),
            image,
            allocated,
            ..DiskState::default()
        };
        SharedDisk(Arc::new(DiskInner {
            state: Mutex::new(state),
            locks: Mutex::new(Vec::new()),
            released: Condvar::new(),
            next_handle: AtomicU64::new(1),
        }))
    }

    /// Opens a new handle on the disk, as opening the file again would.
    pub fn backend(&self) -> FaultyBackend {
        FaultyBackend {
            disk: Arc::clone(&self.0),
            handle: self.0.next_handle.fetch_add(1, Ordering::Relaxed),
        }
    }

    fn state(&self) -> MutexGuard<'_, DiskState> {
        self.0.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Fails I/O call number `call` (1-based, counted over every kind from the disk's creation)
    /// with the OS error `errno`, and with `FaultMode::Forever` every call after it too.
    pub fn fail_call(&self, call: u64, mode: FaultMode, errno: i32) {
        let mut state = self.state();
        state.fault = Some(Fault { call, mode, errno });
        state.fired = false;
    }

    /// Removes the armed fault, so that every later call succeeds.
    pub fn disarm(&self) {
        self.state().fault = None;
    }

    /// Returns whether the last fault armed has failed a call, even if it was disarmed since.
    pub fn fault_fired(&self) -> bool {
        self.state().fired
    }

    /// Sets or removes the disk's capacity.
    pub fn set_capacity(&self, capacity: Option<Capacity>) {
        self.state().capacity = capacity;
    }

    /// Starts recording the kind of every I/O call.
    pub fn record_calls(&self) {
        self.state().log = Some(Vec::new());
    }

    /// Returns the kinds of the I/O calls recorded so far.
    pub fn recorded_calls(&self) -> Vec<IoKind> {
        self.state().log.clone().unwrap_or_default()
    }

    /// Returns the number of I/O calls so far.
    pub fn calls(&self) -> u64 {
        self.state().calls
    }

    /// Returns the number of `sync_data` calls that succeeded so far.
    pub fn syncs(&self) -> u64 {
        self.state().syncs
    }

    /// Returns the current length of the image.
    pub fn len(&self) -> u64 {
        self.state().image.len() as u64
    }

    /// Returns the image as of the last successful `sync_data`: the bytes on stable storage of a
    /// disk without a power cut or a lie.
    pub fn durable_image(&self) -> Vec<u8> {
        self.state().durable.clone()
    }

    /// Cuts the power at `sync_data` call number `sync` (1-based): that call and every later one
    /// make nothing durable. The store goes on running on the disk's cache, as the test cannot stop
    /// it at an arbitrary instant, and [`Self::crash_image`] ignores what it does afterwards.
    pub fn cut_power_at_sync(&self, sync: u64) {
        self.state().cut_at_sync = Some(sync);
    }

    /// Makes the disk lie from `sync_data` call number `sync` (1-based) on: every sync reports
    /// success but makes nothing durable. Unlike [`Self::cut_power_at_sync`], the changes made
    /// after the cut are kept, and [`Self::crash_image`] may apply any of them.
    pub fn lie_from_sync(&self, sync: u64) {
        let mut state = self.state();
        state.cut_at_sync = Some(sync);
        state.lying = true;
    }

    /// Returns whether the power cut has happened.
    pub fn power_cut(&self) -> bool {
        self.state().frozen.is_some()
    }

    /// Builds the bytes a power cut leaves on the medium: the image as of the last completed
    /// `sync_data`, plus a random subset of the changes issued after it and before the cut,
    /// applied in random order. With `tear`, a write longer than a sector may land only in part,
    /// sector by sector. Returns `None` before the cut has happened.
    ///
    /// Changes issued after the cut are left out, because in a real power cut the program stops
    /// there. A lying disk ([`Self::lie_from_sync`]) keeps them: its image is the durable bytes
    /// of the cut plus a random subset of every change made since, up to now.
    pub fn crash_image(&self, rng: &mut SplitMix64, tear: bool) -> Option<Vec<u8>> {
        let (frozen, later) = {
            let state = self.state();
            let later = if state.lying {
                state.unsynced.clone()
            } else {
                Vec::new()
            };
            (state.frozen.clone()?, later)
        };
        let mut image = frozen.durable;
        let mut changes: Vec<Unsynced> = frozen
            .in_flight
            .into_iter()
            .chain(later)
            .filter(|_| rng.chance(1, 2))
            .collect();
        rng.shuffle(&mut changes);
        for change in changes {
            match change {
                Unsynced::SetLen(len) => image.resize(to_index(len), 0),
                Unsynced::Write { offset, data } => {
                    let offset = to_index(offset);
                    if tear && data.len() > SECTOR && rng.chance(1, 2) {
                        // Sectors are counted from the start of the disk, so a write that starts
                        // inside a sector tears at the sector's end.
                        let mut start = 0;
                        while start < data.len() {
                            let end = ((offset + start) / SECTOR + 1) * SECTOR - offset;
                            let end = end.min(data.len());
                            if rng.chance(1, 2) {
                                write_at(&mut image, offset + start, &data[start..end]);
                            }
                            start = end;
                        }
                    } else {
                        write_at(&mut image, offset, &data);
                    }
                }
            }
        }
        Some(image)
    }

    /// Counts one I/O call and returns the error it must fail with, if any.
    fn enter(&self, kind: IoKind) -> Result<(), io::Error> {
        let mut state = self.state();
        state.calls += 1;
        let call = state.calls;
        if let Some(log) = state.log.as_mut() {
            log.push(kind);
        }
        let Some(fault) = state.fault else {
            return Ok(());
        };
        let fails = call == fault.call || (state.fired && fault.mode == FaultMode::Forever);
        if fails {
            state.fired = true;
            return Err(io::Error::from_raw_os_error(fault.errno));
        }
        Ok(())
    }
}

fn to_index(offset: u64) -> usize {
    usize::try_from(offset).expect("the offset fits in memory")
}

/// Copies `data` into `image` at `offset`, growing the image with zeros as a file grows.
fn write_at(image: &mut Vec<u8>, offset: usize, data: &[u8]) {
    let end = offset + data.len();
    if image.len() < end {
        image.resize(end, 0);
    }
    image[offset..end].copy_from_slice(data);
}

fn out_of_range() -> BackendError {
    BackendError::Io(io::Error::new(
        io::ErrorKind::InvalidInput,
        "the range is outside the storage",
    ))
}

fn no_space() -> BackendError {
    BackendError::Io(io::Error::from_raw_os_error(ENOSPC))
}

/// One handle on a [`SharedDisk`], implementing [`redb::StorageBackend`].
pub struct FaultyBackend {
    disk: Arc<DiskInner>,
    handle: u64,
}

impl fmt::Debug for FaultyBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyBackend")
            .field("handle", &self.handle)
            .finish_non_exhaustive()
    }
}

impl FaultyBackend {
    fn disk(&self) -> SharedDisk {
        SharedDisk(Arc::clone(&self.disk))
    }

    fn locks(&self) -> MutexGuard<'_, Vec<HeldLock>> {
        self.disk
            .locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the lock unless another handle has a conflicting one, and returns whether it did.
    fn try_lock(
        &self,
        locks: &mut Vec<HeldLock>,
        bounds: (Bound<u64>, Bound<u64>),
        shared: bool,
    ) -> bool {
        let (first, last) = inclusive(bounds);
        if locks
            .iter()
            .any(|held| held.conflicts(self.handle, first, last, shared))
        {
            return false;
        }
        locks.push(HeldLock {
            handle: self.handle,
            first,
            last,
            shared,
            bounds,
        });
        true
    }

    fn lock_waiting(&self, bounds: (Bound<u64>, Bound<u64>), shared: bool) {
        let mut locks = self.locks();
        while !self.try_lock(&mut locks, bounds, shared) {
            locks = self
                .disk
                .released
                .wait(locks)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn release_all(&self) {
        let mut locks = self.locks();
        locks.retain(|held| held.handle != self.handle);
        self.disk.released.notify_all();
    }
}

/// Turns lock bounds into an inclusive range of byte offsets; an unbounded end covers all growth.
fn inclusive((start, end): (Bound<u64>, Bound<u64>)) -> (u64, u64) {
    let first = match start {
        Bound::Included(offset) => offset,
        Bound::Excluded(offset) => offset + 1,
        Bound::Unbounded => 0,
    };
    let last = match end {
        Bound::Included(offset) => offset,
        Bound::Excluded(offset) => offset - 1,
        Bound::Unbounded => u64::MAX,
    };
    (first, last)
}

impl Drop for FaultyBackend {
    /// Releases the handle's locks, as closing a file does, in case redb never called `close`.
    fn drop(&mut self) {
        self.release_all();
    }
}

impl StorageBackend for FaultyBackend {
    fn len(&self) -> Result<u64, BackendError> {
        let disk = self.disk();
        disk.enter(IoKind::Len)?;
        Ok(disk.len())
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), BackendError> {
        let disk = self.disk();
        disk.enter(IoKind::Read)?;
        let state = disk.state();
        let start = to_index(offset);
        let source = state
            .image
            .get(start..start + out.len())
            .ok_or_else(out_of_range)?;
        out.copy_from_slice(source);
        Ok(())
    }

    fn set_len(&self, len: u64) -> Result<(), BackendError> {
        let disk = self.disk();
        disk.enter(IoKind::SetLen)?;
        let mut state = disk.state();
        if let Some(capacity) = state.capacity
            && !capacity.sparse
            && len > capacity.bytes
            && len > state.image.len() as u64
        {
            return Err(no_space());
        }
        state.image.resize(to_index(len), 0);
        let first_gone = len.div_ceil(BLOCK);
        state.allocated.retain(|block| *block < first_gone);
        state.unsynced.push(Unsynced::SetLen(len));
        Ok(())
    }

    fn sync_data(&self) -> Result<(), BackendError> {
        let disk = self.disk();
        disk.enter(IoKind::Sync)?;
        let mut state = disk.state();
        state.syncs += 1;
        let state = &mut *state;
        if let Some(frozen) = state.frozen.as_mut() {
            // A lying disk keeps every change after the cut, and a cut disk drops them.
            if state.lying {
                frozen.in_flight.append(&mut state.unsynced);
            }
        } else if state.cut_at_sync.is_some_and(|sync| sync <= state.syncs) {
            state.frozen = Some(Frozen {
                durable: state.durable.clone(),
                in_flight: state.unsynced.clone(),
            });
        }
        state.durable.clone_from(&state.image);
        state.unsynced.clear();
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), BackendError> {
        let disk = self.disk();
        disk.enter(IoKind::Write)?;
        let mut state = disk.state();
        if data.is_empty() {
            return Ok(());
        }

        if let Some(capacity) = state.capacity
            && capacity.sparse
        {
            let blocks = offset / BLOCK..=(offset + data.len() as u64 - 1) / BLOCK;
            let new = blocks
                .filter(|block| !state.allocated.contains(block))
                .count() as u64;
            if (state.allocated.len() as u64 + new) * BLOCK > capacity.bytes {
                return Err(no_space());
            }
        }

        let start = to_index(offset);
        let target = state
            .image
            .get_mut(start..start + data.len())
            .ok_or_else(out_of_range)?;
        target.copy_from_slice(data);
        state
            .allocated
            .extend(offset / BLOCK..=(offset + data.len() as u64 - 1) / BLOCK);
        state.unsynced.push(Unsynced::Write {
            offset,
            data: data.to_vec(),
        });
        Ok(())
    }

    fn close(&self) -> Result<(), BackendError> {
        self.release_all();
        Ok(())
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        Ok(self.try_lock(&mut self.locks(), (start, end), false))
    }

    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, BackendError> {
        Ok(self.try_lock(&mut self.locks(), (start, end), true))
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.lock_waiting((start, end), false);
        Ok(())
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.lock_waiting((start, end), true);
        Ok(())
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        let mut locks = self.locks();
        let position = locks
            .iter()
            .position(|held| held.handle == self.handle && held.bounds == (start, end))
            .ok_or_else(|| {
                BackendError::Io(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "unlock of a range this handle does not hold",
                ))
            })?;
        locks.remove(position);
        self.disk.released.notify_all();
        Ok(())
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        let (first, last) = inclusive((start, end));
        Ok(self
            .locks()
            .iter()
            .any(|held| held.conflicts(self.handle, first, last, false)))
    }
}

/// A small deterministic random number generator (`SplitMix64`), so that a failing power-cut case
/// can be rebuilt from its seed.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Returns a number below `bound`, which must not be zero.
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }

    /// Returns `true` with probability `numerator / denominator`.
    pub fn chance(&mut self, numerator: u64, denominator: u64) -> bool {
        self.below(denominator) < numerator
    }

    /// Shuffles `items` in place (Fisher-Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}
