//! indicatif progress bars behind the core's `Progress` trait. Bars are drawn
//! only on a terminal and only for stages that take a while.

use indicatif::{ProgressBar, ProgressStyle};
use memcap_core::eval::Progress;
use std::sync::Mutex;

/// One bar per stage, replaced when the next stage starts.
pub struct Bars {
    bar: Mutex<Option<ProgressBar>>,
    enabled: bool,
}

impl Bars {
    pub fn new(enabled: bool) -> Self {
        Bars { bar: Mutex::new(None), enabled: enabled && std::io::IsTerminal::is_terminal(&std::io::stderr()) }
    }
    pub fn finish(&self) {
        if let Some(b) = self.bar.lock().expect("bar lock").take() {
            b.finish_and_clear();
        }
    }
}

impl Progress for Bars {
    fn start(&self, stage: &str, total: u64) {
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
