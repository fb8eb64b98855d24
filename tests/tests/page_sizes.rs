//! A long log never loads at once: the page of a build with a 1 MB log and
//! one with a much longer one (`GANTRY_PAGE_LOG_MB`, 100 to measure) read
//! the same bounded latest part, and serving either raises this process's
//! peak memory by little. Alone in its own test binary, so that the peak
//! is this test's. The figures are printed; the bounds are asserted.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use gantry_build_page::serve;
use gantry_core::codebuild_events::BuildStatus;
use gantry_e2e::pages::{PageWorld, finish, pull_request_build};

const BASE: &str = "https://pages.example";

/// Counts the heap this process holds, and its peak since the last reset:
/// what serving a page holds at most, whatever the allocator keeps.
struct Counting;

static HELD: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the layout is the caller's, passed on unchanged.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let held = HELD.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(held, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) };
        HELD.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// Starts a new peak at what is held now; returns that.
fn reset_peak() -> usize {
    let held = HELD.load(Ordering::Relaxed);
    PEAK.store(held, Ordering::Relaxed);
    held
}

/// Writes `mb` MB of 100-byte lines, a batch at a time (the test never
/// holds more than a batch).
async fn write_log(world: &PageWorld, record: &gantry_core::records::BuildRecord, mb: usize) {
    let lines_per_mb = 1024 * 1024 / 100;
    for chunk in 0..mb {
        let lines: Vec<String> = (0..lines_per_mb)
            .map(|i| format!("{:010} {}", chunk * lines_per_mb + i, "y".repeat(88)))
            .collect();
        world.append(record, &lines).await;
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_long_log_s_page_reads_a_bounded_part_in_bounded_memory() {
    let big_mb: usize = std::env::var("GANTRY_PAGE_LOG_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let world = PageWorld::start(BASE, &[]).await;
    let mut figures = Vec::new();
    for (uuid, mb) in [
        ("0f1e2d3c-0000-4000-8000-00000000c001", 1),
        ("0f1e2d3c-0000-4000-8000-00000000c002", big_mb),
    ] {
        let mut record = pull_request_build(uuid);
        let written = Instant::now();
        write_log(&world, &record, mb).await;
        let write_s = written.elapsed().as_secs_f64();
        finish(&mut record, BuildStatus::Succeeded);
        world.put(&record).await;
        let link = world.link(&record).await;
        let (path, query) = link
            .trim_start_matches(BASE)
            .split_once('?')
            .expect("a signed link");
        let before = reset_peak();
        let started = Instant::now();
        let page = serve(
            &world.deps,
            "GET",
            path,
            query,
            gantry_core::events::now_ms() / 1000,
        )
        .await;
        let took = started.elapsed();
        let grew_kib = PEAK.load(Ordering::Relaxed).saturating_sub(before) / 1024;
        assert_eq!(page.status, 200);
        // The log's last line is there, its first is not (for more than a
        // part): the latest part, whatever the log's length.
        let last = format!("{:010}", mb * (1024 * 1024 / 100) - 1);
        assert!(page.body.contains(&last), "the log's end is shown");
        assert!(page.body.len() < 1024 * 1024, "{} bytes", page.body.len());
        // A part is at most CloudWatch's 1 MB response, held a few times
        // over (the SDK's body, the lines, the page).
        assert!(
            grew_kib < 16 * 1024,
            "serving held {grew_kib} KiB at its peak"
        );
        figures.push(format!(
            "{mb} MB log: page {} KiB in {:.0} ms, heap at most {} KiB over what was held before (log written in {write_s:.1} s)",
            page.body.len() / 1024,
            took.as_secs_f64() * 1000.0,
            grew_kib
        ));
    }
    for line in &figures {
        println!("{line}");
    }
}
