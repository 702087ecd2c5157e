//! A pointer that readers follow without any atomic read-modify-write: the listener list's
//! snapshot, read on every emit.
//!
//! `arc-swap` (what this replaces) costs a few nanoseconds per read because a reader must
//! publish that it holds the pointer with an atomic swap. Here a reader only *stores* to its
//! own thread's slot (an odd sequence number while it reads, even when done) and the writer
//! pays instead: after swapping the pointer it issues a process-wide memory barrier
//! (`membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)` on Linux) and frees the old value only once
//! every reader that was inside a read section at that moment has left it. This is the
//! asymmetric-fence RCU of liburcu ("urcu-membarrier") and folly, reduced to what one pointer
//! needs. Where `membarrier` is unavailable both sides fall back to `SeqCst` fences: slower
//! reads, same guarantees.
//!
//! Why it is sound, in short: a reader does `W(slot = odd)`, barrier, `R(ptr)`; the writer
//! does `W(ptr = new)`, barrier, `R(slots)`. With a full barrier on both sides (the heavy one
//! makes every running thread execute one), either the writer sees the reader's odd slot and
//! keeps the old value until that slot changes, or the reader's `R(ptr)` sees the new pointer.
//! A slot that changed since the writer looked means that read section ended (its `Release`
//! store pairs with the writer's `Acquire` load), so nothing can still point into the value.

#![allow(unsafe_code)]

use std::cell::Cell;
use std::sync::atomic::{
    AtomicBool, AtomicPtr, AtomicU8, AtomicU64, Ordering, compiler_fence, fence,
};
use std::sync::{Mutex, PoisonError};

/// One thread's read state, shared with writers. Leaked on purpose: slots are recycled when
/// their thread exits, so their number is bounded by the most threads ever alive at once.
struct Slot {
    /// Odd while the owning thread is inside a read section.
    seq: AtomicU64,
    in_use: AtomicBool,
}

/// Every slot ever created.
static SLOTS: Mutex<Vec<&'static Slot>> = Mutex::new(Vec::new());

struct Reader {
    slot: Cell<Option<&'static Slot>>,
    /// Nesting depth: a handler that emits reads again inside the outer section.
    depth: Cell<u32>,
}

thread_local! {
    // `const` and without a destructor, so reading it is a plain thread-local access.
    static READER: Reader = const { Reader { slot: Cell::new(None), depth: Cell::new(0) } };
    // Only touched when a thread registers; gives the slot back when the thread exits.
    static RELEASE: SlotRelease = const { SlotRelease };
}

struct SlotRelease;

impl Drop for SlotRelease {
    fn drop(&mut self) {
        let _ = READER.try_with(|r| {
            if r.depth.get() == 0
                && let Some(slot) = r.slot.take()
            {
                slot.in_use.store(false, Ordering::Release);
            }
        });
    }
}

#[cold]
#[inline(never)]
fn register(reader: &Reader) -> &'static Slot {
    let mut slots = SLOTS.lock().unwrap_or_else(PoisonError::into_inner);
    let slot = match slots.iter().find(|s| {
        s.in_use
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }) {
        Some(slot) => *slot,
        None => {
            let slot: &'static Slot = Box::leak(Box::new(Slot {
                seq: AtomicU64::new(0),
                in_use: AtomicBool::new(true),
            }));
            slots.push(slot);
            slot
        }
    };
    reader.slot.set(Some(slot));
    // If the thread is already being torn down this fails and the slot simply stays taken.
    let _ = RELEASE.try_with(|_| ());
    slot
}

const UNKNOWN: u8 = 0;
const FAST: u8 = 1;
const FENCES: u8 = 2;
static BARRIER: AtomicU8 = AtomicU8::new(UNKNOWN);

#[cfg(target_os = "linux")]
fn membarrier(cmd: libc::c_int) -> bool {
    // SAFETY: membarrier takes two integers and touches no memory of ours.
    unsafe {
        libc::syscall(
            libc::SYS_membarrier,
            cmd,
            0 as libc::c_uint,
            0 as libc::c_int,
        ) == 0
    }
}

/// Decides once whether the heavy barrier is available: `FAST` or `FENCES`.
#[cold]
fn barrier_mode() -> u8 {
    #[cfg(target_os = "linux")]
    {
        const QUERY: libc::c_int = 0;
        const PRIVATE_EXPEDITED: libc::c_int = 1 << 3;
        const REGISTER_PRIVATE_EXPEDITED: libc::c_int = 1 << 4;
        // SAFETY: as in `membarrier`.
        let supported = unsafe {
            libc::syscall(
                libc::SYS_membarrier,
                QUERY,
                0 as libc::c_uint,
                0 as libc::c_int,
            )
        };
        if supported > 0
            && supported & libc::c_long::from(PRIVATE_EXPEDITED) != 0
            && membarrier(REGISTER_PRIVATE_EXPEDITED)
        {
            BARRIER.store(FAST, Ordering::SeqCst);
            return FAST;
        }
    }
    BARRIER.store(FENCES, Ordering::SeqCst);
    FENCES
}

/// The reader's side: free when the heavy barrier exists.
#[inline(always)]
fn light_barrier() {
    if BARRIER.load(Ordering::Relaxed) == FAST {
        compiler_fence(Ordering::SeqCst);
    } else {
        fence(Ordering::SeqCst);
    }
}

/// The writer's side: every thread of the process executes a full barrier.
fn heavy_barrier() {
    let mode = match BARRIER.load(Ordering::SeqCst) {
        UNKNOWN => barrier_mode(),
        mode => mode,
    };
    #[cfg(target_os = "linux")]
    if mode == FAST && membarrier(1 << 3) {
        return;
    }
    let _ = mode;
    fence(Ordering::SeqCst);
}

/// Runs `f` inside a read section of this thread.
#[inline(always)]
fn read_section<R>(f: impl FnOnce() -> R) -> R {
    struct Exit<'a> {
        reader: &'a Reader,
        slot: &'static Slot,
        depth: u32,
        seq: u64,
    }
    impl Drop for Exit<'_> {
        #[inline(always)]
        fn drop(&mut self) {
            self.reader.depth.set(self.depth);
            if self.depth == 0 {
                self.slot.seq.store(self.seq + 2, Ordering::Release);
            }
        }
    }
    // Only the address comes out of `with`: a closure this small is inlined into a direct
    // thread-local access, where running the whole section inside `with` made an indirect
    // call through the key on every emit.
    let reader: *const Reader = READER.with(|reader| reader as *const Reader);
    // SAFETY: `READER` is a `const` thread-local without a destructor: it lives, unmoved, as
    // long as this thread, and the reference does not leave this call.
    let reader = unsafe { &*reader };
    let slot = match reader.slot.get() {
        Some(slot) => slot,
        None => register(reader),
    };
    let depth = reader.depth.get();
    reader.depth.set(depth + 1);
    // Only this thread writes its slot, so load + store is enough (no read-modify-write).
    let seq = slot.seq.load(Ordering::Relaxed);
    if depth == 0 {
        slot.seq.store(seq + 1, Ordering::Relaxed);
        light_barrier();
    }
    let _exit = Exit {
        reader,
        slot,
        depth,
        seq,
    };
    f()
}

/// A replaced value and the slots (with their sequence numbers) that were inside a read
/// section when it was replaced.
type Retired<T> = (*mut T, Vec<(&'static Slot, u64)>);

/// A value replaced as a whole and read without atomic read-modify-writes.
pub(crate) struct Rcu<T> {
    current: AtomicPtr<T>,
    /// Old values some reader may still be reading, with the slots (and their sequence
    /// numbers) that were inside a read section when the value was replaced.
    retired: Mutex<Vec<Retired<T>>>,
    /// Set while `retired` is not empty, so that readers help free it on their way out.
    pending: AtomicBool,
}

// SAFETY: the raw pointers are owned boxes of `T`, handed between threads like `Box<T>`; a
// reader only gets `&T`, which needs `T: Sync`.
unsafe impl<T: Send + Sync> Send for Rcu<T> {}
// SAFETY: as above.
unsafe impl<T: Send + Sync> Sync for Rcu<T> {}

impl<T> Rcu<T> {
    pub(crate) fn new(value: T) -> Self {
        Rcu {
            current: AtomicPtr::new(Box::into_raw(Box::new(value))),
            retired: Mutex::new(Vec::new()),
            pending: AtomicBool::new(false),
        }
    }

    /// Calls `f` with the current value. `f` may call `read` and `replace` again (a handler
    /// that emits or subscribes); a value replaced meanwhile stays valid until `f` returns.
    #[inline(always)]
    pub(crate) fn read<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        let out = read_section(|| {
            let current = self.current.load(Ordering::Acquire);
            // SAFETY: `current` was made by `Box::into_raw` and is freed only by `reclaim`,
            // after every read section that could have loaded it has ended (module docs).
            f(unsafe { &*current })
        });
        if self.pending.load(Ordering::Relaxed) {
            self.reclaim();
        }
        out
    }

    /// Swaps in `value`; the old one is dropped as soon as no reader can hold it. Writers must
    /// be serialised by the caller.
    pub(crate) fn replace(&self, value: T) {
        let old = self
            .current
            .swap(Box::into_raw(Box::new(value)), Ordering::SeqCst);
        heavy_barrier();
        let readers: Vec<(&'static Slot, u64)> = SLOTS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|slot| (*slot, slot.seq.load(Ordering::Acquire)))
            .filter(|(_, seq)| seq % 2 == 1)
            .collect();
        self.retired
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((old, readers));
        self.pending.store(true, Ordering::Release);
        self.reclaim();
    }

    /// Frees every retired value that no reader can still hold.
    #[cold]
    fn reclaim(&self) {
        // A reader that finds the lock taken leaves the work to whoever holds it.
        let Ok(mut retired) = self.retired.try_lock() else {
            return;
        };
        let mut freed = Vec::new();
        retired.retain(|(ptr, readers)| {
            let done = readers
                .iter()
                .all(|(slot, seq)| slot.seq.load(Ordering::Acquire) != *seq);
            if done {
                freed.push(*ptr);
            }
            !done
        });
        self.pending.store(!retired.is_empty(), Ordering::Release);
        drop(retired);
        for ptr in freed {
            // SAFETY: made by `Box::into_raw`, no longer reachable from `current`, and every
            // read section that might have loaded it has ended.
            drop(unsafe { Box::from_raw(ptr) });
        }
    }
}

impl<T> Drop for Rcu<T> {
    fn drop(&mut self) {
        // `&mut self`: no reader exists any more.
        let retired = std::mem::take(
            self.retired
                .get_mut()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for (ptr, _) in retired {
            // SAFETY: owned boxes, unreachable by anyone else now.
            drop(unsafe { Box::from_raw(ptr) });
        }
        // SAFETY: as above.
        drop(unsafe { Box::from_raw(*self.current.get_mut()) });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    /// Counts live values, to prove that replaced values are freed, and freed once.
    struct Tracked(Arc<AtomicUsize>, u64);
    impl Drop for Tracked {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Reclamation waits for read sections of *every* thread (other tests run readers too), so
    /// give those a bounded number of chances to end before judging.
    fn settle<T>(rcu: &Rcu<T>, live: &AtomicUsize, expected: usize) {
        for _ in 0..100_000 {
            if live.load(Ordering::SeqCst) == expected {
                return;
            }
            rcu.read(|_| ());
            std::thread::yield_now();
        }
        assert_eq!(live.load(Ordering::SeqCst), expected);
    }

    fn tracked(live: &Arc<AtomicUsize>, n: u64) -> Tracked {
        live.fetch_add(1, Ordering::SeqCst);
        Tracked(live.clone(), n)
    }

    #[test]
    fn replaced_values_are_freed_when_no_reader_holds_them() {
        let live = Arc::new(AtomicUsize::new(0));
        let rcu = Rcu::new(tracked(&live, 0));
        for n in 1..100 {
            rcu.replace(tracked(&live, n));
        }
        assert_eq!(rcu.read(|t| t.1), 99);
        settle(&rcu, &live, 1);
        drop(rcu);
        assert_eq!(live.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_value_replaced_inside_a_read_stays_valid_until_the_read_ends() {
        let live = Arc::new(AtomicUsize::new(0));
        let rcu = Rcu::new(tracked(&live, 1));
        rcu.read(|outer| {
            rcu.replace(tracked(&live, 2));
            // The old value is still alive and readable; nested reads see the new one.
            assert_eq!(outer.1, 1);
            assert_eq!(rcu.read(|inner| inner.1), 2);
            assert_eq!(live.load(Ordering::SeqCst), 2);
        });
        // The outer section ended: the next reads help free the old value.
        rcu.read(|t| assert_eq!(t.1, 2));
        settle(&rcu, &live, 1);
    }

    #[test]
    fn concurrent_readers_and_writers_never_see_a_freed_value() {
        let live = Arc::new(AtomicUsize::new(0));
        let rcu = Arc::new(Rcu::new(tracked(&live, 0)));
        let stop = Arc::new(AtomicBool::new(false));
        std::thread::scope(|s| {
            for _ in 0..3 {
                let (rcu, stop) = (rcu.clone(), stop.clone());
                s.spawn(move || {
                    let mut last = 0;
                    while !stop.load(Ordering::Relaxed) {
                        // A freed value would have a zero live count or a torn number.
                        let n = rcu.read(|t| {
                            assert!(t.0.load(Ordering::SeqCst) >= 1);
                            t.1
                        });
                        assert!(n >= last, "values only move forward");
                        last = n;
                    }
                });
            }
            let (rcu, live2) = (rcu.clone(), live.clone());
            s.spawn(move || {
                for n in 1..=2_000 {
                    rcu.replace(tracked(&live2, n));
                }
            })
            .join()
            .unwrap();
            stop.store(true, Ordering::Relaxed);
        });
        rcu.read(|t| assert_eq!(t.1, 2_000));
        // Whatever readers delayed is freed by the next writes or the drop.
        drop(Arc::try_unwrap(rcu).ok().unwrap());
        assert_eq!(live.load(Ordering::SeqCst), 0);
    }
}
