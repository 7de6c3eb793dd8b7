//! Percentiles, the Prometheus histogram read from `/metrics`, and process CPU/RSS from /proc.

/// Nearest-rank percentile of a sorted slice (`q` in 0..=1).
pub fn percentile<T: Copy>(sorted: &[T], q: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil().max(1.0) as usize;
    Some(sorted[rank.min(sorted.len()) - 1])
}

/// A cumulative histogram read from Prometheus/OpenMetrics text: `(le, count)` sorted by `le`
/// (`+Inf` last), summed over every label set, plus `_sum` and `_count`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Histogram {
    pub buckets: Vec<(f64, f64)>,
    pub sum: f64,
    pub count: f64,
}

impl Histogram {
    pub fn parse(text: &str, name: &str) -> Option<Histogram> {
        let bucket = format!("{name}_bucket");
        let sum_name = format!("{name}_sum");
        let count_name = format!("{name}_count");
        let mut h = Histogram::default();
        let mut found = false;
        for line in text.lines() {
            if line.starts_with('#') {
                continue;
            }
            let (metric, rest) = match line.find(['{', ' ']) {
                Some(i) => (&line[..i], &line[i..]),
                None => continue,
            };
            let (labels, value_part) = if let Some(stripped) = rest.strip_prefix('{') {
                match stripped.find('}') {
                    Some(end) => (&stripped[..end], &stripped[end + 1..]),
                    None => continue,
                }
            } else {
                ("", rest)
            };
            let Some(value) = value_part.split_whitespace().next().and_then(|v| v.parse::<f64>().ok()) else {
                continue;
            };
            if metric == bucket {
                let Some(le) = label(labels, "le") else { continue };
                let le = if le == "+Inf" { f64::INFINITY } else { le.parse::<f64>().ok()? };
                found = true;
                match h.buckets.iter_mut().find(|(b, _)| *b == le) {
                    Some((_, c)) => *c += value,
                    None => h.buckets.push((le, value)),
                }
            } else if metric == sum_name {
                h.sum += value;
            } else if metric == count_name {
                h.count += value;
            }
        }
        h.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        found.then_some(h)
    }

    /// `self - before`, bucket by bucket.
    pub fn delta(&self, before: &Histogram) -> Histogram {
        let buckets = self
            .buckets
            .iter()
            .map(|&(le, c)| (le, c - before.buckets.iter().find(|b| b.0 == le).map_or(0.0, |b| b.1)))
            .collect();
        Histogram { buckets, sum: self.sum - before.sum, count: self.count - before.count }
    }

    /// Upper bound of the bucket holding the `q` quantile (the usual reading of a bucketed
    /// histogram: "p99 ≤ this").
    pub fn quantile_upper(&self, q: f64) -> Option<f64> {
        let total = self.buckets.last()?.1;
        if total <= 0.0 {
            return None;
        }
        let target = q * total;
        self.buckets.iter().find(|b| b.1 >= target).map(|b| b.0)
    }
}

/// Sum of a counter or gauge over its label sets (`name`, or `name_total` as OpenMetrics names
/// counters); None when absent.
pub fn scalar(text: &str, name: &str) -> Option<f64> {
    let total = format!("{name}_total");
    let mut sum = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let end = line.find(['{', ' ']).unwrap_or(line.len());
        let metric = &line[..end];
        if metric != name && metric != total {
            continue;
        }
        let rest = &line[end..];
        let rest = match rest.strip_prefix('{') {
            Some(r) => r.find('}').map_or("", |i| &r[i + 1..]),
            None => rest,
        };
        if let Some(v) = rest.split_whitespace().next().and_then(|v| v.parse::<f64>().ok()) {
            *sum.get_or_insert(0.0) += v;
        }
    }
    sum
}

fn label<'a>(labels: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("{key}=\"");
    let i = labels.find(&pat)? + pat.len();
    let end = labels[i..].find('"')?;
    Some(&labels[i..i + end])
}

/// Clock ticks per second of /proc/PID/stat (AT_CLKTCK from our own auxv; 100 if unreadable).
pub fn clock_ticks() -> f64 {
    if let Ok(aux) = std::fs::read("/proc/self/auxv") {
        for pair in aux.chunks_exact(16) {
            let key = u64::from_ne_bytes(pair[..8].try_into().unwrap());
            let val = u64::from_ne_bytes(pair[8..].try_into().unwrap());
            if key == 17 && val > 0 {
                return val as f64;
            }
        }
    }
    100.0
}

/// utime + stime of a process, in seconds (`pid` None: this process).
pub fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the command name (which may hold spaces), from field 3 (state) on.
    let after = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / clock_ticks())
}

/// Busy (everything but idle and iowait) and total jiffies of all CPUs, from /proc/stat.
pub fn machine_jiffies() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<f64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let total: f64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4).copied().unwrap_or(0.0);
    Some((total - idle, total))
}

/// The kernel's UDP counters: (RcvbufErrors, InErrors) from /proc/net/snmp.
pub fn udp_errors() -> Option<(u64, u64)> {
    let snmp = std::fs::read_to_string("/proc/net/snmp").ok()?;
    let mut lines = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let names: Vec<&str> = lines.next()?.split_whitespace().collect();
    let values: Vec<&str> = lines.next()?.split_whitespace().collect();
    let get = |n: &str| names.iter().position(|x| *x == n).and_then(|i| values.get(i)?.parse().ok());
    Some((get("RcvbufErrors")?, get("InErrors")?))
}

/// Datagrams dropped so far by the open UDP sockets (IPv4 and IPv6) whose local port is in
/// `low..=high` (the `drops` column of /proc/net/udp), and how many such sockets there are.
pub fn udp_socket_drops(low: u16, high: u16) -> (u64, u64) {
    let (mut drops, mut sockets) = (0u64, 0u64);
    for path in ["/proc/net/udp", "/proc/net/udp6"] {
        let Ok(text) = std::fs::read_to_string(path) else { continue };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let port = f.get(1).and_then(|a| a.rsplit(':').next()).and_then(|p| u16::from_str_radix(p, 16).ok());
            if let (Some(port), Some(d)) = (port, f.last().and_then(|d| d.parse::<u64>().ok()))
                && (low..=high).contains(&port)
            {
                drops += d;
                sockets += 1;
            }
        }
    }
    (drops, sockets)
}

/// Online CPUs.
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// VmRSS of a process, in bytes.
pub fn rss_bytes(pid: Option<u32>) -> Option<u64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/status"),
        None => "/proc/self/status".to_owned(),
    };
    let status = std::fs::read_to_string(path).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), Some(50));
        assert_eq!(percentile(&v, 0.99), Some(99));
        assert_eq!(percentile(&v, 1.0), Some(100));
        assert_eq!(percentile::<u32>(&[], 0.5), None);
        assert_eq!(percentile(&[7u32], 0.99), Some(7));
    }

    const BEFORE: &str = "# HELP agentline_voice_tick_seconds x\n# TYPE agentline_voice_tick_seconds histogram\n\
agentline_voice_tick_seconds_sum 1.0\nagentline_voice_tick_seconds_count 10\n\
agentline_voice_tick_seconds_bucket{le=\"0.0001\"} 5\nagentline_voice_tick_seconds_bucket{le=\"0.001\"} 10\n\
agentline_voice_tick_seconds_bucket{le=\"+Inf\"} 10\nagentline_other_bucket{le=\"1\"} 3\n# EOF\n";
    const AFTER: &str = "agentline_voice_tick_seconds_sum 2.0\nagentline_voice_tick_seconds_count 110\n\
agentline_voice_tick_seconds_bucket{le=\"0.0001\"} 55\nagentline_voice_tick_seconds_bucket{le=\"0.001\"} 108\n\
agentline_voice_tick_seconds_bucket{le=\"+Inf\"} 110 # {trace_id=\"x\"} 0.5\n";

    #[test]
    fn histogram_delta_and_quantiles() {
        let b = Histogram::parse(BEFORE, "agentline_voice_tick_seconds").unwrap();
        let a = Histogram::parse(AFTER, "agentline_voice_tick_seconds").unwrap();
        let d = a.delta(&b);
        assert_eq!(d.count, 100.0);
        assert_eq!(d.buckets, vec![(0.0001, 50.0), (0.001, 98.0), (f64::INFINITY, 100.0)]);
        assert_eq!(d.quantile_upper(0.5), Some(0.0001));
        assert_eq!(d.quantile_upper(0.98), Some(0.001));
        assert_eq!(d.quantile_upper(0.99), Some(f64::INFINITY));
        assert!(Histogram::parse(BEFORE, "agentline_absent").is_none());
    }

    #[test]
    fn reads_counters_and_gauges() {
        let t = "# TYPE a counter\na_total 5\nb 3\nb_bucket{le=\"1\"} 9\nc{x=\"1\"} 2\nc{x=\"2\"} 4\n";
        assert_eq!(scalar(t, "a"), Some(5.0));
        assert_eq!(scalar(t, "b"), Some(3.0));
        assert_eq!(scalar(t, "c"), Some(6.0));
        assert_eq!(scalar(t, "d"), None);
    }

    #[test]
    fn histogram_sums_label_sets() {
        let t = "h_bucket{kind=\"a\",le=\"1\"} 2\nh_bucket{kind=\"b\",le=\"1\"} 3\nh_bucket{kind=\"a\",le=\"+Inf\"} 2\nh_bucket{kind=\"b\",le=\"+Inf\"} 4\n";
        let h = Histogram::parse(t, "h").unwrap();
        assert_eq!(h.buckets, vec![(1.0, 5.0), (f64::INFINITY, 6.0)]);
    }

    #[test]
    fn reads_own_cpu_and_rss() {
        assert!(cpu_seconds(None).is_some());
        assert!(rss_bytes(None).unwrap() > 0);
        assert!(clock_ticks() > 0.0);
    }
}
