//! The GPUs view: the machine (CPUs, load, memory) and the agent's queue, then memory per GPU as NVML
//! reports it with the runs placed on it, or, with no GPU, the runs on the CPU slots.

use super::super::state::{State, View};
use super::{cursor_style, fg};
use crate::runs::record::State as RunState;
use crate::sched::slots::Slot;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Color;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table, Widget};

/// The GPU index a device string names ("cuda" is GPU 0).
fn gpu_index(device: &str) -> Option<u32> {
    match device {
        "cuda" => Some(0),
        d => d.strip_prefix("cuda:")?.parse().ok(),
    }
}

pub fn render(s: &State, area: Rect, buf: &mut Buffer) {
    let block = Block::default().borders(Borders::TOP).title(" GPUs ");
    let inner = block.inner(area);
    block.render(area, buf);
    let [machine, devices] = Layout::vertical([Constraint::Length(3), Constraint::Min(1)]).areas(inner);
    Paragraph::new(machine_lines(s)).render(machine, buf);
    let Some(gpus) = &s.gpus else {
        Paragraph::new("asking NVML for GPUs...").render(devices, buf);
        return;
    };
    if gpus.is_empty() {
        render_cpu_only(s, devices, buf);
        return;
    }
    let cursor = s.cursor[View::Gpus.index()];
    let rows = gpus.iter().enumerate().map(|(i, g)| {
        let runs: Vec<&str> = s
            .runs
            .values()
            .filter(|r| r.state() == Some(RunState::Running))
            .filter(|r| match r.slot {
                Some(slot) => slot == Slot::Gpu(g.index),
                None => r.spec.as_ref().and_then(|sp| gpu_index(&sp.device.device)) == Some(g.index),
            })
            .map(|r| r.id.as_str())
            .collect();
        let used = g.memory_total_mib.saturating_sub(g.memory_free_mib);
        let cells = [
            g.index.to_string(),
            g.name.clone(),
            format!("{used}/{} MiB", g.memory_total_mib),
            if runs.is_empty() { "-".into() } else { format!("{}: {}", runs.len(), runs.join(", ")) },
        ];
        let row = Row::new(cells);
        if i == cursor { row.style(cursor_style()) } else { row }
    });
    Table::new(rows, [Constraint::Length(3), Constraint::Length(24), Constraint::Length(18), Constraint::Min(10)])
        .header(Row::new(["#", "name", "memory", "runs"]).style(fg(s, Color::Cyan)))
        .render(devices, buf);
}

fn gib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / (1024.0 * 1024.0))
}

/// The host line and the agent line (slots, running, queued, paused).
fn machine_lines(s: &State) -> Vec<Line<'static>> {
    let Some(view) = &s.host else { return vec![Line::from("reading the machine...")] };
    let host = view.host.as_ref().map_or("host: /proc unreadable".into(), |h| {
        format!(
            "host: {} CPUs, load {:.2}   memory {} / {} GiB used",
            h.cpus,
            h.load_1m,
            gib(h.memory_used_kib()),
            gib(h.memory_total_kib)
        )
    });
    let agent = match &view.agent {
        None => Line::from("agent: not running (a launch starts it)").style(fg(s, Color::Yellow)),
        Some(a) => Line::from(format!(
            "agent: pid {}{}   {} CPU slots, {} GPU slots   {} running, {} queued",
            a.pid,
            if a.paused { " (queue paused)" } else { "" },
            a.cpu_slots,
            a.gpus as usize * a.gpu_slots_per_device,
            a.running.len(),
            a.queued.len()
        )),
    };
    vec![Line::from(host), agent]
}

/// No GPU: say so, then the runs on the CPU slots and the head of the queue.
fn render_cpu_only(s: &State, area: Rect, buf: &mut Buffer) {
    let mut lines = vec![Line::from("no GPU: NVML found none; runs use the CPU").style(fg(s, Color::Yellow))];
    let Some(agent) = s.host.as_ref().and_then(|h| h.agent.as_ref()) else {
        Paragraph::new(lines).render(area, buf);
        return;
    };
    for run in &agent.running {
        let slot = match run.slot {
            Slot::Cpu(i) => format!("cpu slot {i}"),
            Slot::Gpu(i) => format!("gpu{i}"),
        };
        lines.push(Line::from(format!("running  {}  ({slot}, pid {})", run.id, run.pid)));
    }
    let room = (area.height as usize).saturating_sub(lines.len() + 1);
    for id in agent.queued.iter().take(room) {
        lines.push(Line::from(format!("queued   {id}")));
    }
    if agent.queued.len() > room {
        lines.push(Line::from(format!("... and {} more queued", agent.queued.len() - room)));
    }
    Paragraph::new(lines).render(area, buf);
}
