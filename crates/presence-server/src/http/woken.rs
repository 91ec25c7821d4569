//! A future polled only when it asked to be: [`WhenWoken`].
//!
//! A connection's task waits on its connection and on its timers at once.
//! `select!` polls every branch at every wake-up of the task, and nearly
//! every wake-up is the connection's I/O: the timers would be looked at
//! for nothing each time. Wrapped in [`WhenWoken`], the timers are polled
//! only after something they wait on woke them (or on the first poll),
//! which costs a wake-up of the connection's I/O one flag and one waker
//! comparison instead.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use parking_lot::Mutex;

/// `F`, polled only when one of the wakers it handed out was woken.
pub struct WhenWoken<F> {
    inner: Pin<Box<F>>,
    signal: Arc<Signal>,
    /// The waker `inner` is polled with: `signal`'s.
    waker: Waker,
}

/// Whether the wrapped future was woken, and the task to wake then.
#[derive(Default)]
struct Signal {
    woken: AtomicBool,
    task: Mutex<Option<Waker>>,
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        if let Some(task) = self.task.lock().as_ref() {
            task.wake_by_ref();
        }
    }
}

impl<F: Future> WhenWoken<F> {
    /// Wraps `inner`, to be polled on the first poll and then only when
    /// woken.
    pub fn new(inner: F) -> Self {
        let signal = Arc::new(Signal {
            woken: AtomicBool::new(true),
            task: Mutex::new(None),
        });
        WhenWoken {
            inner: Box::pin(inner),
            waker: Waker::from(signal.clone()),
            signal,
        }
    }
}

impl<F: Future> Future for WhenWoken<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        {
            let mut task = self.signal.task.lock();
            if !task.as_ref().is_some_and(|t| t.will_wake(cx.waker())) {
                *task = Some(cx.waker().clone());
            }
        }
        // The flag is cleared before polling, so that a wake-up during the
        // poll is not lost.
        if !self.signal.woken.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        let this = &mut *self;
        let mut inner_cx = Context::from_waker(&this.waker);
        this.inner.as_mut().poll(&mut inner_cx)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn the_inner_future_is_polled_when_it_was_woken_and_not_otherwise() {
        let polls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let notify = Arc::new(tokio::sync::Notify::new());
        let inner = {
            let (polls, notify) = (polls.clone(), notify.clone());
            let mut notified = Box::pin(async move { notify.notified().await });
            std::future::poll_fn(move |cx| {
                polls.fetch_add(1, Ordering::Relaxed);
                notified.as_mut().poll(cx)
            })
        };
        let mut wrapped = Box::pin(WhenWoken::new(inner));
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        // The first poll reaches the inner future; later ones, unwoken, do not.
        for _ in 0..5 {
            assert!(wrapped.as_mut().poll(&mut cx).is_pending());
        }
        assert_eq!(polls.load(Ordering::Relaxed), 1);
        // Woken by what it waits on, it is polled again, and finishes.
        notify.notify_one();
        let done = tokio::time::timeout(Duration::from_secs(5), wrapped).await;
        assert!(done.is_ok());
        assert_eq!(polls.load(Ordering::Relaxed), 2);
    }
}
