//! indicatif progress bars behind the core's `Progress` trait. Bars are drawn
//! only on a terminal and only for stages that take a while.

use indicatif::{ProgressBar, ProgressStyle};
use memcap_core::eval::Progress;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One bar per stage, replaced when the next stage starts. Also keeps the
/// wall time of every stage (terminal or not) for [`Bars::timings`].
pub struct Bars {
    bar: Mutex<Option<ProgressBar>>,
    enabled: bool,
    /// (stage, start, duration once the next stage started or `finish` ran)
    stages: Mutex<Vec<(String, Instant, Option<Duration>)>>,
}

impl Bars {
    pub fn new(enabled: bool) -> Self {
        Bars {
            bar: Mutex::new(None),
            enabled: enabled && std::io::IsTerminal::is_terminal(&std::io::stderr()),
            stages: Mutex::new(Vec::new()),
        }
    }
    pub fn finish(&self) {
        if let Some(b) = self.bar.lock().expect("bar lock").take() {
            b.finish_and_clear();
        }
        close_last(&mut self.stages.lock().expect("stage lock"));
    }
    /// "stage 1.23 s · stage 4.56 s" for the stages run so far.
    pub fn timings(&self) -> String {
        let stages = self.stages.lock().expect("stage lock");
        stages
            .iter()
            .map(|(name, t0, d)| format!("{name} {:.2} s", d.unwrap_or_else(|| t0.elapsed()).as_secs_f64()))
            .collect::<Vec<_>>()
            .join(" · ")
    }
}

fn close_last(stages: &mut [(String, Instant, Option<Duration>)]) {
    if let Some((_, t0, d @ None)) = stages.last_mut() {
        *d = Some(t0.elapsed());
    }
}

impl Progress for Bars {
    fn start(&self, stage: &str, total: u64) {
        {
            let mut stages = self.stages.lock().expect("stage lock");
            close_last(&mut stages);
            stages.push((stage.to_string(), Instant::now(), None));
        }
        let mut g = self.bar.lock().expect("bar lock");
        if let Some(b) = g.take() {
            b.finish_and_clear();
        }
        if !self.enabled || total < 1000 {
            return;
        }
        let b = ProgressBar::new(total).with_message(stage.to_string());
        b.set_style(
            ProgressStyle::with_template("{msg:>18} [{bar:30}] {pos}/{len} ({eta})")
                .expect("template")
                .progress_chars("=> "),
        );
        *g = Some(b);
    }
    fn inc(&self, n: u64) {
        if let Some(b) = self.bar.lock().expect("bar lock").as_ref() {
            b.inc(n);
        }
    }
}

/// A spinner for single long steps (construction).
pub fn spinner(enabled: bool, msg: &str) -> Option<ProgressBar> {
    if !enabled || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        return None;
    }
    let s = ProgressBar::new_spinner().with_message(msg.to_string());
    s.enable_steady_tick(std::time::Duration::from_millis(120));
    Some(s)
}

/// Prints a log line above `pb`, or to stderr when the bar is hidden (output
/// not a terminal), where indicatif would drop the line.
pub fn log_line(pb: &ProgressBar, line: String) {
    if pb.is_hidden() {
        eprintln!("{line}");
    } else {
        pb.println(line);
    }
}
