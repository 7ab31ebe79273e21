//! The machine itself, as the GPUs view shows it: CPUs, load and memory, read from /proc.

/// CPUs, the 1-minute load average and memory, from /proc (Linux).
#[derive(Debug, Clone, PartialEq)]
pub struct HostInfo {
    pub cpus: usize,
    pub load_1m: f64,
    pub memory_total_kib: u64,
    pub memory_available_kib: u64,
}

impl HostInfo {
    /// This machine now, or None where /proc cannot be read.
    pub fn read() -> Option<HostInfo> {
        let (memory_total_kib, memory_available_kib) = parse_meminfo(&std::fs::read_to_string("/proc/meminfo").ok()?)?;
        Some(HostInfo {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            load_1m: parse_loadavg(&std::fs::read_to_string("/proc/loadavg").ok()?)?,
            memory_total_kib,
            memory_available_kib,
        })
    }

    pub fn memory_used_kib(&self) -> u64 {
        self.memory_total_kib.saturating_sub(self.memory_available_kib)
    }
}

/// (MemTotal, MemAvailable) in KiB from the text of /proc/meminfo.
pub fn parse_meminfo(text: &str) -> Option<(u64, u64)> {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
    };
    Some((field("MemTotal")?, field("MemAvailable")?))
}

/// The 1-minute load average from the text of /proc/loadavg.
pub fn parse_loadavg(text: &str) -> Option<f64> {
    text.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_and_loadavg_are_parsed_by_field_name() {
        let meminfo = "MemTotal:       24576000 kB\nMemFree:         1000 kB\nMemAvailable:   20480000 kB\n";
        assert_eq!(parse_meminfo(meminfo), Some((24_576_000, 20_480_000)));
        assert_eq!(parse_meminfo("MemTotal: 5 kB\n"), None, "no MemAvailable");
        assert_eq!(parse_loadavg("1.52 0.80 0.41 2/345 6789\n"), Some(1.52));
        assert_eq!(parse_loadavg(""), None);
    }

    #[test]
    fn this_machine_reads_as_plausible() {
        let host = HostInfo::read().expect("/proc on Linux");
        assert!(host.cpus >= 1 && host.load_1m >= 0.0);
        assert!(host.memory_available_kib <= host.memory_total_kib && host.memory_total_kib > 0, "{host:?}");
    }
}
