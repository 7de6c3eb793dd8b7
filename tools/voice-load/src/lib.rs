//! Voice load harness for agentline: N concurrent calls to the simulated network's echo callee,
//! each sending real-time 20 ms PCM frames with a periodic 1 kHz burst, measuring the server's
//! frame clock (arrivals, gaps, drops) and the echo round trip. See README.md.

pub mod audio;
pub mod call;
pub mod fake;
pub mod report;
pub mod run;
pub mod stats;
