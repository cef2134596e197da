//! [`Pooled`]: the RAII handle to an object from an [`ObjectPool`];
//! dropping it recycles the object and releases it.
//!
//! # Invariants
//!
//! - `object` is initialised from construction until the drop (or
//!   [`detach`](Pooled::detach)) moves it out, exactly once.
//! - The drop runs `recycle` on the object in place before it touches the
//!   pool, so user code never runs inside an owner access; a panic in
//!   `recycle` drops the object where it is and counts it (a guard does
//!   both during the unwind), and the object is moved once, into the
//!   pool's magazine.
//!
//! Called by users; calls the pool on drop.

use std::fmt;
use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};

use crate::object::recycle::{Clear, Recycle};
use crate::object::ObjectPool;

/// An object from an [`ObjectPool`], which it borrows. Dereferences to `T`;
/// dropping it resets the object ([`Recycle::recycle`], on the dropping
/// thread) and gives it back to the pool, or drops it if `recycle` refuses
/// or panics.
///
/// A `Pooled` cannot outlive its pool:
///
/// ```compile_fail
/// let object = {
///     let pool = magpool::ObjectPool::<Vec<u8>>::new(magpool::Clear::default());
///     pool.get()
/// };
/// ```
pub struct Pooled<'p, T: Send + 'static, R = Clear>
where
    R: Recycle<T> + Send + Sync + 'static,
{
    object: ManuallyDrop<T>,
    pool: &'p ObjectPool<T, R>,
}

impl<'p, T, R> Pooled<'p, T, R>
where
    T: Send + 'static,
    R: Recycle<T> + Send + Sync + 'static,
{
    #[inline]
    pub(crate) fn new(pool: &'p ObjectPool<T, R>, object: T) -> Self {
        Pooled { object: ManuallyDrop::new(object), pool }
    }

    /// Takes the object out for good: it will not go back to the pool
    /// (counted as a release and a discard, so `in_use` stays exact).
    pub fn detach(self) -> T {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: `this` is never dropped, so the object is moved out once.
        let object = unsafe { ManuallyDrop::take(&mut this.object) };
        this.pool.count_dropped();
        object
    }

    /// The pool this object returns to.
    pub fn pool(&self) -> &'p ObjectPool<T, R> {
        self.pool
    }
}

impl<T, R> Drop for Pooled<'_, T, R>
where
    T: Send + 'static,
    R: Recycle<T> + Send + Sync + 'static,
{
    #[inline]
    fn drop(&mut self) {
        let pool = self.pool;
        let object: *mut T = &mut *self.object;
        // If `recycle` unwinds, this drops the object where it is and
        // counts it, so nothing is lost from the pool's accounting.
        let unwinding = Unwind { object, pool };
        // SAFETY: the handle's object, initialised (type invariants); the
        // guard touches it only if `recycle` unwinds, after this borrow.
        let keep = pool.policy().recycle(unsafe { &mut *object });
        std::mem::forget(unwinding);
        // SAFETY: initialised, and this is its one move out: the handle is
        // dropping.
        let object = unsafe { ManuallyDrop::take(&mut self.object) };
        if keep {
            pool.release(object);
        } else {
            drop(object);
            pool.count_dropped();
        }
    }
}

/// See `Pooled`'s drop: armed while `recycle` runs.
struct Unwind<'p, T: Send + 'static, R: Recycle<T> + Send + Sync + 'static> {
    object: *mut T,
    pool: &'p ObjectPool<T, R>,
}

impl<T: Send + 'static, R: Recycle<T> + Send + Sync + 'static> Drop for Unwind<'_, T, R> {
    fn drop(&mut self) {
        // SAFETY: only reached when `recycle` unwinds: the object is still
        // in its handle, initialised, and the handle will not touch it again.
        unsafe { std::ptr::drop_in_place(self.object) };
        self.pool.count_dropped();
    }
}

impl<T, R> Deref for Pooled<'_, T, R>
where
    T: Send + 'static,
    R: Recycle<T> + Send + Sync + 'static,
{
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        &self.object
    }
}

impl<T, R> DerefMut for Pooled<'_, T, R>
where
    T: Send + 'static,
    R: Recycle<T> + Send + Sync + 'static,
{
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        &mut self.object
    }
}

impl<T, R> fmt::Debug for Pooled<'_, T, R>
where
    T: Send + fmt::Debug + 'static,
    R: Recycle<T> + Send + Sync + 'static,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.object, f)
    }
}
