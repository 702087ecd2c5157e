//! A pointer that readers follow without any atomic read-modify-write: the listener list's
//! snapshot, read on every emit.
//!
//! `arc-swap` (what this replaces) costs a few nanoseconds per read because a reader must
//! publish that it holds the pointer with an atomic swap. Here a reader only *stores* to its
//! own thread's slot (a nesting depth and a generation in one word: depth up on entry; depth
//! back down, and the generation up when the outermost section ends) and the writer pays
//! instead: after swapping the pointer it issues a process-wide memory barrier
//! (`membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)` on Linux) and frees the old value only once
//! every reader that was inside a read section at that moment has left it. This is the
//! asymmetric-fence RCU of liburcu ("urcu-membarrier") and folly, reduced to what one pointer
//! needs.
//!
//! Why it is sound, in short: a reader does `W(slot = inside)`, barrier, `R(ptr)`; the writer
//! does `W(ptr = new)`, barrier, `R(slots)`. With a full barrier on both sides (the heavy one
//! makes every running thread execute one), either the writer sees the reader's slot inside a
//! section and keeps the old value until that section ends, or the reader's `R(ptr)` sees the
//! new pointer. A slot whose depth is back to zero, or whose generation moved, left the section
//! the writer saw (its `Release` store pairs with the writer's `Acquire` load), so nothing can
//! still point into the value.
//!
//! Where the heavy barrier is missing: on Linux without `membarrier` (kernels before 4.14, or a
//! sandbox that filters the call) replaced values are kept until the `Rcu` is dropped, so reads
//! stay as cheap and memory grows with the number of replacements instead; on other systems
//! both sides use `SeqCst` fences (slower reads, same guarantees). Miri, which has no
//! `membarrier`, takes that fence path too, so the protocol is checked there:
//! `cargo +nightly miri test -p eventbus-runtime --no-default-features --lib rcu`.

#![allow(unsafe_code)]

use std::cell::Cell;
#[cfg(all(target_os = "linux", not(miri)))]
use std::sync::atomic::compiler_fence;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, AtomicU64, Ordering, fence};
use std::sync::{Mutex, PoisonError};

/// The low half of a slot's word: how deeply its thread is nested in read sections (a handler
/// that emits reads again inside the outer section).
const DEPTH: u64 = u32::MAX as u64;
/// One generation: added when a thread's outermost read section ends.
const GENERATION: u64 = DEPTH + 1;

/// One thread's read state, shared with writers. Leaked on purpose: slots are recycled when
/// their thread exits, so their number is bounded by the most threads ever alive at once.
struct Slot {
    /// Depth (low half) and generation (high half); written only by the owning thread.
    word: AtomicU64,
    in_use: AtomicBool,
}

impl Slot {
    /// Whether a reader that had `seen` in its slot has left that read section since.
    fn left(&self, seen: u64) -> bool {
        let now = self.word.load(Ordering::Acquire);
        // A wrapped generation can only make this say "still inside": never unsafe.
        now & DEPTH == 0 || now >> 32 != seen >> 32
    }
}

/// Every slot ever created.
static SLOTS: Mutex<Vec<&'static Slot>> = Mutex::new(Vec::new());

struct Reader {
    slot: Cell<Option<&'static Slot>>,
}

thread_local! {
    // `const` and without a destructor, so reading it is a plain thread-local access.
    static READER: Reader = const { Reader { slot: Cell::new(None) } };
    // Only touched when a thread registers; gives the slot back when the thread exits.
    static RELEASE: SlotRelease = const { SlotRelease };
}

struct SlotRelease;

impl Drop for SlotRelease {
    fn drop(&mut self) {
        let _ = READER.try_with(|r| {
            if let Some(slot) = r.slot.get()
                && slot.word.load(Ordering::Relaxed) & DEPTH == 0
            {
                r.slot.set(None);
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
                word: AtomicU64::new(0),
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

/// The reader's side: free where the writer has the heavy barrier.
#[inline(always)]
fn light_barrier() {
    #[cfg(all(target_os = "linux", not(miri)))]
    compiler_fence(Ordering::SeqCst);
    #[cfg(any(not(target_os = "linux"), miri))]
    fence(Ordering::SeqCst);
}

const UNKNOWN: u8 = 0;
const AVAILABLE: u8 = 1;
const MISSING: u8 = 2;
/// Whether `membarrier` works here, decided by the first writer.
static MEMBARRIER: AtomicU8 = AtomicU8::new(UNKNOWN);

#[cfg(all(target_os = "linux", not(miri)))]
fn membarrier(cmd: libc::c_int) -> libc::c_long {
    // SAFETY: membarrier takes two integers and touches no memory of ours.
    unsafe {
        libc::syscall(
            libc::SYS_membarrier,
            cmd,
            0 as libc::c_uint,
            0 as libc::c_int,
        )
    }
}

#[cfg(all(target_os = "linux", not(miri)))]
const PRIVATE_EXPEDITED: libc::c_int = 1 << 3;

/// Registers for the expedited barrier once: `AVAILABLE` or `MISSING`.
#[cold]
fn membarrier_mode() -> u8 {
    #[cfg(all(target_os = "linux", not(miri)))]
    {
        const QUERY: libc::c_int = 0;
        const REGISTER_PRIVATE_EXPEDITED: libc::c_int = 1 << 4;
        let supported = membarrier(QUERY);
        if supported > 0
            && supported & libc::c_long::from(PRIVATE_EXPEDITED) != 0
            && membarrier(REGISTER_PRIVATE_EXPEDITED) == 0
        {
            MEMBARRIER.store(AVAILABLE, Ordering::SeqCst);
            return AVAILABLE;
        }
    }
    MEMBARRIER.store(MISSING, Ordering::SeqCst);
    MISSING
}

/// The writer's side: every thread of the process executes a full barrier. `false` where that
/// is impossible on Linux: no read section may then be assumed over, ever.
fn heavy_barrier() -> bool {
    fence(Ordering::SeqCst);
    #[cfg(all(target_os = "linux", not(miri)))]
    {
        let mode = match MEMBARRIER.load(Ordering::SeqCst) {
            UNKNOWN => membarrier_mode(),
            mode => mode,
        };
        mode == AVAILABLE && membarrier(PRIVATE_EXPEDITED) == 0
    }
    #[cfg(any(not(target_os = "linux"), miri))]
    {
        let _ = (UNKNOWN, AVAILABLE, MISSING, &MEMBARRIER);
        true
    }
}

/// Runs `f` inside a read section of this thread.
#[inline(always)]
fn read_section<R>(f: impl FnOnce() -> R) -> R {
    struct Exit {
        slot: &'static Slot,
        /// The word before this section began.
        before: u64,
    }
    impl Drop for Exit {
        #[inline(always)]
        fn drop(&mut self) {
            let after = if self.before & DEPTH == 0 {
                self.before + GENERATION
            } else {
                self.before
            };
            self.slot.word.store(after, Ordering::Release);
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
    // Only this thread writes its slot, so load + store is enough (no read-modify-write).
    // `Release`, like the exit's store: a writer that reads this entry (its generation moved
    // on) concludes that the previous section ended, so everything that section read must
    // happen before the writer frees it. Reading a later relaxed store would not synchronise
    // with the exit's release store (C++20 release sequences hold only read-modify-writes);
    // Miri found that race. A plain `mov` on x86 either way.
    let before = slot.word.load(Ordering::Relaxed);
    slot.word.store(before + 1, Ordering::Release);
    light_barrier();
    let _exit = Exit { slot, before };
    f()
}

/// A replaced value and the slots (with their words) that were inside a read section when it
/// was replaced; `None` when that could not be known (no heavy barrier): kept until drop.
type Retired<T> = (*mut T, Option<Vec<(&'static Slot, u64)>>);

/// A value replaced as a whole and read without atomic read-modify-writes.
pub(crate) struct Rcu<T> {
    current: AtomicPtr<T>,
    /// Old values some reader may still be reading, with the slots (and their words) that
    /// were inside a read section when the value was replaced.
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

    /// The current value, for the writer: no read section, and nothing freed on the way out.
    /// Writers only, serialised by the caller, and `f` must not replace: then the current
    /// value cannot be retired, let alone freed, while `f` runs.
    pub(crate) fn with_current<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        // SAFETY: only a writer retires the current value (`replace`), the caller is the only
        // writer, and `f` does not replace.
        f(unsafe { &*self.current.load(Ordering::Acquire) })
    }

    /// Swaps in `value`; the old one is freed by a later [`collect`](Self::collect) (or a
    /// reader on its way out) once no reader can hold it. Writers must be serialised by the
    /// caller.
    ///
    /// Nothing is freed here: freeing drops listeners, whose captured state may run user code
    /// that subscribes, and the caller still holds its writer lock (a `Drop` that subscribed
    /// deadlocked on it).
    pub(crate) fn replace(&self, value: T) {
        let old = self
            .current
            .swap(Box::into_raw(Box::new(value)), Ordering::SeqCst);
        let readers = heavy_barrier().then(|| {
            SLOTS
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .map(|slot| (*slot, slot.word.load(Ordering::Acquire)))
                .filter(|(_, word)| word & DEPTH != 0)
                .collect::<Vec<_>>()
        });
        self.retired
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((old, readers));
        self.pending.store(true, Ordering::Release);
    }

    /// Frees the replaced values no reader can still hold. For writers, after they released
    /// their lock.
    pub(crate) fn collect(&self) {
        if self.pending.load(Ordering::Relaxed) {
            self.reclaim();
        }
    }

    /// Calls `f` with the current value and with every replaced value a reader may still hold
    /// (a removed listener is made to be skipped in all of them). Writers only, serialised by
    /// the caller: then no value is between `current` and the retired list, so none is missed.
    pub(crate) fn for_each_live(&self, mut f: impl FnMut(&T)) {
        // Held throughout: a retired value is freed only after `reclaim` took it out of this
        // list under the lock, and the current value only after it was retired into it.
        let retired = self.retired.lock().unwrap_or_else(PoisonError::into_inner);
        // SAFETY: the current value is freed only after `replace` retired it into the list
        // whose lock is held here; retired values in the list are not freed while it is held.
        f(unsafe { &*self.current.load(Ordering::Acquire) });
        for (ptr, _) in retired.iter() {
            // SAFETY: as above.
            f(unsafe { &**ptr });
        }
    }

    /// Frees every retired value that no reader can still hold. One at a time, outside the
    /// lock (a value's drop may run user code that subscribes, i.e. writes here again), and
    /// without allocating: readers call this from `emit`, which allocates nothing.
    #[cold]
    fn reclaim(&self) {
        loop {
            // A reader that finds the lock taken leaves the work to whoever holds it.
            let Ok(mut retired) = self.retired.try_lock() else {
                return;
            };
            let ready = retired.iter().position(|(_, readers)| {
                readers
                    .as_ref()
                    .is_some_and(|readers| readers.iter().all(|(slot, seen)| slot.left(*seen)))
            });
            let freed = ready.map(|index| retired.swap_remove(index));
            // Values kept until drop need no more help from readers.
            let waiting = retired.iter().any(|(_, readers)| readers.is_some());
            self.pending.store(waiting, Ordering::Release);
            drop(retired);
            let Some((ptr, _readers)) = freed else {
                return;
            };
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
    fn the_end_of_a_nested_read_does_not_end_the_outer_one() {
        let live = Arc::new(AtomicUsize::new(0));
        let rcu = Rcu::new(tracked(&live, 1));
        rcu.read(|outer| {
            // Replaced inside a nested section; that section ends, the outer one goes on.
            rcu.read(|_| rcu.replace(tracked(&live, 2)));
            rcu.read(|inner| assert_eq!(inner.1, 2));
            for _ in 0..1_000 {
                rcu.read(|_| ());
            }
            assert_eq!(
                live.load(Ordering::SeqCst),
                2,
                "freed while the outer read holds it"
            );
            assert_eq!(outer.1, 1);
        });
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
