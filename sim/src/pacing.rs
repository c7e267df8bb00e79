//! Keeping a loop on its deadlines: waking at an absolute time, optionally
//! busy-waiting over the last stretch, and the host's steal time.
//!
//! `std::thread::sleep(due - now)` is a relative sleep: time lost between
//! reading the clock and entering the sleep is added to the wake-up. A
//! [`Pacer`] sleeps until the deadline itself (`clock_nanosleep` on
//! `CLOCK_MONOTONIC` with `TIMER_ABSTIME`, the clock [`Instant`] reads on
//! Linux), and with a spin margin wakes that much early and busy-waits on the
//! clock, which removes the kernel's own wake-up latency (timer interrupt,
//! scheduling: some 10–60 µs in a virtual machine) at the cost of the margin's
//! share of a core.
//!
//! Neither helps when the whole machine does not run: a virtual machine's
//! vCPUs can be descheduled by its host (steal time, or a CPU quota the
//! virtual machine exhausts), and then no timer fires and no thread runs
//! until the host resumes it. [`steal_time`] reads what the guest kernel
//! accounted of that.

use std::time::{Duration, Instant};

/// Waits until deadlines: an absolute sleep, then a busy-wait over the last
/// `spin` (see [the module docs](self)).
#[derive(Clone, Copy, Debug)]
pub struct Pacer {
    spin: Duration,
    /// An `Instant` and the `CLOCK_MONOTONIC` time (seconds, nanoseconds)
    /// read just before it.
    #[cfg(target_os = "linux")]
    base: (Instant, (i64, i64)),
}

impl Pacer {
    /// A pacer that sleeps until `spin` before each deadline and busy-waits
    /// from there (`Duration::ZERO`: sleeps until the deadline itself).
    pub fn new(spin: Duration) -> Self {
        Self {
            spin,
            #[cfg(target_os = "linux")]
            base: {
                // The clock first: deadlines map to no later than themselves.
                let ts = monotonic_now();
                (Instant::now(), ts)
            },
        }
    }

    /// The busy-wait margin.
    pub fn spin(&self) -> Duration {
        self.spin
    }

    /// Returns at `deadline` or, when it has passed, at once; never earlier.
    pub fn wait_until(&self, deadline: Instant) {
        let wake = deadline.checked_sub(self.spin).unwrap_or(deadline);
        if Instant::now() < wake {
            self.sleep_until(wake);
        }
        while Instant::now() < deadline {
            std::hint::spin_loop();
        }
    }

    /// Sleeps until about `t` (a little earlier at most: the time between the
    /// two clock reads of [`Pacer::new`]).
    #[cfg(target_os = "linux")]
    #[allow(unsafe_code)]
    fn sleep_until(&self, t: Instant) {
        let (base, (sec, nsec)) = self.base;
        let Some(ahead) = t.checked_duration_since(base) else {
            return;
        };
        let nanos = nsec + i64::from(ahead.subsec_nanos());
        let target = libc::timespec {
            tv_sec: (sec + ahead.as_secs() as i64 + nanos / 1_000_000_000) as libc::time_t,
            tv_nsec: (nanos % 1_000_000_000) as libc::c_long,
        };
        // SAFETY: `target` is a valid timespec that outlives the call, and a
        // null remaining-time pointer is allowed with TIMER_ABSTIME. The
        // call is repeated when a signal interrupts it (EINTR).
        while unsafe {
            libc::clock_nanosleep(
                libc::CLOCK_MONOTONIC,
                libc::TIMER_ABSTIME,
                &target,
                std::ptr::null_mut(),
            )
        } == libc::EINTR
        {}
    }

    #[cfg(not(target_os = "linux"))]
    fn sleep_until(&self, t: Instant) {
        std::thread::sleep(t.saturating_duration_since(Instant::now()));
    }
}

/// The `CLOCK_MONOTONIC` time: seconds, nanoseconds.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
#[allow(clippy::useless_conversion)] // `time_t` and `c_long` are `i32` on 32-bit targets
fn monotonic_now() -> (i64, i64) {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always
    // exists on Linux, so the call cannot fail.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (i64::from(ts.tv_sec), i64::from(ts.tv_nsec))
}

/// Time the host ran other work while this machine's CPUs had work to do
/// (steal time, summed over CPUs, as the kernel accounts it in `/proc/stat`,
/// in its 10 ms units), or `None` when it is not known (not Linux, or no
/// `/proc`). Zero on a machine that is not virtualised.
pub fn steal_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    steal_of(&stat, user_hz()?)
}

/// The steal time of `/proc/stat`'s text `stat`, whose counts are `1/hz` s.
fn steal_of(stat: &str, hz: u64) -> Option<Duration> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    // cpu user nice system idle iowait irq softirq steal ...
    let ticks: u64 = line.split_whitespace().nth(8)?.parse().ok()?;
    Some(Duration::from_secs(ticks / hz) + Duration::from_secs(ticks % hz) / hz as u32)
}

/// The unit of `/proc/stat` (`USER_HZ`), per second.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn user_hz() -> Option<u64> {
    // SAFETY: `sysconf` only reads its argument.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(hz)
        .ok()
        .filter(|&hz| hz > 0 && hz <= 1_000_000)
}

#[cfg(not(target_os = "linux"))]
fn user_hz() -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_until_the_deadline_and_no_longer_than_needed() {
        for spin in [Duration::ZERO, Duration::from_micros(300)] {
            let pacer = Pacer::new(spin);
            let start = Instant::now();
            for k in 1..=20u32 {
                let due = start + Duration::from_millis(2) * k;
                pacer.wait_until(due);
                let woke = Instant::now();
                assert!(woke >= due, "never early");
                assert!(woke - due < Duration::from_millis(500), "{:?}", woke - due);
            }
            // A deadline in the past returns at once.
            let t = Instant::now();
            pacer.wait_until(start);
            assert!(t.elapsed() < Duration::from_millis(100));
        }
    }

    #[test]
    fn reads_the_steal_column() {
        let stat = "cpu  5731748 181681 197523 1556724 13841 0 3280 19090 0 0\n\
                    cpu0 2818554 67522 89074 861008 4662 0 1206 9499 0 0\n";
        assert_eq!(steal_of(stat, 100), Some(Duration::from_millis(190_900)));
        assert_eq!(steal_of("cpu0 1 2\n", 100), None);
        #[cfg(target_os = "linux")]
        assert!(steal_time().is_some());
    }
}
